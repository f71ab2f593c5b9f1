"""``policyqa serve`` from a given code tree, for benchmarks that compare commits (eval/bench_live_http.py).

A code tree is a checkout (this one, or a ``git worktree`` of another commit):
the server runs in it with it first on PYTHONPATH, so that it, not the
installed checkout, is what is imported. Each server serves a copy of an
index, or, for replicas, one knowledge base in a milvus-lite server shared
with the other replica.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from eval.chaos_servers import MilvusLite
from eval.server import free_port


@dataclass
class Served:
    """Servers started for one measurement: their URLs and processes (the first is the writer)."""

    urls: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)


def code_env(code_dir: Path, env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONPATH": str(code_dir)}


def start_in(code_dir: Path, env: dict[str, str], log_path: Path, served: Served, timeout: float = 600.0) -> None:
    """Start ``policyqa serve`` from ``code_dir`` and wait until /api/health answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = code_env(code_dir, {**env, "POLICYQA_HOST": "127.0.0.1", "POLICYQA_PORT": str(port)})
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], cwd=code_dir, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    served.urls.append(url)
    served.processes.append(process)
    served.logs.append(log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/health", timeout=5.0).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"server did not answer within {timeout:g} s")


def stop(served: Served) -> None:
    for process in served.processes:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what is left of its group: the upload readers
        process.wait()


@contextlib.contextmanager
def serve_copy(code_dir: Path, data_dir: Path, workdir: Path, env: dict[str, str]) -> Iterator[Served]:
    """One server on a copy of ``data_dir``'s index (the original is left as it was)."""
    workdir.mkdir(parents=True)
    copy = workdir / "data"
    shutil.copytree(Path(data_dir) / "index", copy / "index")
    served = Served()
    try:
        start_in(code_dir, {**env, "POLICYQA_DATA_DIR": str(copy), "POLICYQA_BUILD_ON_START": "false"},
                 workdir / "server.log", served)  # fmt: skip
        yield served
    finally:
        stop(served)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def milvus_replicas(code_dir: Path, workdir: Path, env: dict[str, str], replicas: int = 2) -> Iterator[Served]:
    """The seed corpus ingested into a fresh milvus-lite server, and ``replicas`` servers over it."""
    workdir.mkdir(parents=True)
    milvus = MilvusLite(workdir / "milvus", workdir / "milvus.log")
    uri = milvus.start()
    shared = {**env, "POLICYQA_STORE": "milvus", "POLICYQA_MILVUS_URI": uri, "POLICYQA_MILVUS_PREFIX": "live",
              "POLICYQA_BUILD_ON_START": "false"}  # fmt: skip
    served = Served()
    try:
        subprocess.run([sys.executable, "-m", "service.cli", "ingest", "docs_raw", "--quiet"], cwd=code_dir,
                       env=code_env(code_dir, {**shared, "POLICYQA_DATA_DIR": str(workdir / "ingest")}),
                       check=True)  # fmt: skip
        for number in range(1, replicas + 1):
            data_dir = workdir / f"replica-{number}"
            data_dir.mkdir()
            start_in(code_dir, {**shared, "POLICYQA_DATA_DIR": str(data_dir)}, workdir / f"replica-{number}.log",
                     served)  # fmt: skip
        yield served
    finally:
        stop(served)
        milvus.stop()
        shutil.rmtree(workdir, ignore_errors=True)
