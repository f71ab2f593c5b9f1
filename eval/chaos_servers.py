"""The processes the chaos soak kills and starts again: ``policyqa serve`` on a data directory, a milvus-lite server.

A server runs in a process group of its own, so that SIGKILL takes it with its
children (the upload reader's fork server and readers), as a killed container
or machine would. It is started again on the same data directory, on a fresh
port, its output appended to one log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from eval.server import REPO, free_port


class StartError(RuntimeError):
    """The server did not come up: it exited, or did not answer in time."""


@dataclass
class ServerProcess:
    """``policyqa serve`` on ``data_dir``, started, killed and started again; its log in ``log_path``."""

    name: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    url: str = ""
    starts: int = 0
    log_offset: int = 0  # where the current run's output begins
    start_times_s: list[float] = field(default_factory=list)

    def start(self, timeout: float = 300.0) -> float:
        """Start it and wait until /api/health answers 200; the seconds that took."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.starts += 1
        env = {**self.env, "POLICYQA_HOST": "127.0.0.1", "POLICYQA_PORT": str(port)}
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== chaos: {self.name} start {self.starts} =====\n".encode())
            log.flush()
            self.log_offset = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve"], cwd=REPO, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise StartError(f"{self.name} exited with {self.process.returncode}:\n{self.run_log()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/api/health", timeout=5.0).status_code == 200:
                    self.start_times_s.append(time.monotonic() - started)
                    return self.start_times_s[-1]
            time.sleep(0.2)
        self.kill()
        raise StartError(f"{self.name} did not answer within {timeout:g} s:\n{self.run_log()[-3000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to its whole process group, and reap it."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL after 20 s."""
        if not self.alive():
            return self.kill()
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        self.kill()  # whatever of its group is left

    def run_log(self) -> str:
        """The current run's output."""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode("utf-8", errors="replace")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def merge_segments_on_disk(data_dir: Path) -> set[str]:
    """The segment directories a merge wrote or is writing (one listdir: cheap enough to poll)."""
    try:
        return {n for n in os.listdir(Path(data_dir) / "index" / "segments") if n.startswith("merge-")}
    except OSError:
        return set()


def listed_segments(data_dir: Path) -> set[str]:
    """The segments some generation on disk lists. Read without locks; a file replaced meanwhile is skipped."""
    index = Path(data_dir) / "index"
    listed: set[str] = set()
    with contextlib.suppress(OSError):
        for generation in [p for p in os.scandir(index) if p.is_dir() and p.name != "segments"]:
            with contextlib.suppress(OSError, ValueError):
                manifest = json.loads(Path(generation.path, "manifest.json").read_text(encoding="utf-8"))
                listed.update(s["segment_id"] for s in manifest.get("segments", []))
    return listed


class MergeWatch:
    """Whether a merge is writing a segment now: a merge segment on disk that no generation lists (yet),
    other than those a killed merge left (the next merge removes them)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.known: set[str] = set()  # listed, or left by a dead merge

    def restarted(self) -> None:
        self.known = merge_segments_on_disk(self.data_dir)

    def __call__(self) -> bool:
        if not merge_segments_on_disk(self.data_dir) - self.known:
            return False
        self.known |= listed_segments(self.data_dir)
        return bool(merge_segments_on_disk(self.data_dir) - self.known)


@dataclass
class MilvusLite:
    """A real ``milvus-lite server`` on 127.0.0.1 (pure Python here), as tests/conftest.py starts one."""

    data_dir: Path
    log_path: Path
    process: subprocess.Popen | None = None
    uri: str = ""

    def start(self, timeout: float = 120.0) -> str:
        port = free_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["milvus-lite", "server", "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartError(f"milvus-lite server exited:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    self.uri = f"http://127.0.0.1:{port}"
                    return self.uri
            time.sleep(0.2)
        self.stop()
        raise StartError(f"milvus-lite server did not listen within {timeout:g} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
