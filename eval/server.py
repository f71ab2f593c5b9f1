"""A real ``policyqa serve`` in a subprocess, on a copy of an index, for the fuzz and soak scripts.

The copy keeps the index being fuzzed or soaked (uploads, replacements,
deletes) apart from the one it came from; the model directory is shared.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        """Stop the server and remove its copy of the index; returns its log."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        output = self.log()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    source_data_dir: Path, env: dict[str, str] | None = None, *, timeout: float = 300.0, copy: bool = True
) -> Server:
    """Serve a copy of ``source_data_dir``'s index (built from docs_raw/ on start if it has none); with
    ``copy=False``, the directory itself (for a benchmark that only reads, over an index too big to copy)."""
    workdir = Path(tempfile.mkdtemp(prefix="policyqa-run-"))
    data_dir = workdir / "data" if copy else Path(source_data_dir)
    index_dir = Path(source_data_dir) / "index"
    if copy and index_dir.is_dir():
        shutil.copytree(index_dir, data_dir / "index")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_env = {
        **os.environ,
        "POLICYQA_DATA_DIR": str(data_dir),
        "POLICYQA_MODELS_DIR": os.environ.get("POLICYQA_MODELS_DIR", str(Path(source_data_dir) / "models")),
        "POLICYQA_HOST": "127.0.0.1",
        "POLICYQA_PORT": str(port),
        **(env or {}),
    }
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            cwd=REPO,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, workdir, server_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.stop()
            raise RuntimeError(f"server exited early:\n{output[-3000:]}")
        try:
            if httpx.get(f"{server.url}/api/health", timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"server did not answer within {timeout:g} s")
