"""Shared fixtures: the real bundled model, the seed corpus built once, a real server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from index.embedders import load_embedder
from index.stores.local.build import build_index
from index.stores.local.generations import LoadedIndex, load_index

REPO = Path(__file__).resolve().parents[1]
DOCS_RAW = REPO / "docs_raw"


class CountingEmbedder:
    """The real embedder, counting the passages it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.passages: list[str] = []

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        self.passages.extend(texts)
        return self.inner.embed_passages(texts)


@pytest.fixture(scope="session", autouse=True)
def models_dir(tmp_path_factory) -> Path:
    """One converted model for the whole run; servers and CLI runs find it through the environment."""
    path = tmp_path_factory.mktemp("models")
    os.environ["POLICYQA_MODELS_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def embedder(models_dir):
    """The default embedder: the converted multilingual-e5-small through sentence-transformers."""
    return load_embedder("e5-small", models_dir=models_dir)


@pytest.fixture(scope="session")
def seed_data_dir(tmp_path_factory, embedder) -> Path:
    data_dir = tmp_path_factory.mktemp("seed-data")
    build_index(docs_dir=DOCS_RAW, data_dir=data_dir, embedder=embedder, show_progress=False)
    return data_dir


@pytest.fixture(scope="session")
def seed_index(seed_data_dir, embedder) -> Iterator[LoadedIndex]:
    index = load_index(seed_data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
    yield index
    index.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    env_overrides: dict[str, str], *, timeout: float = 120.0, ready: tuple[int, ...] = (200,)
) -> tuple[subprocess.Popen, str]:
    """``policyqa serve`` in a subprocess, polled until /api/health answers.

    Its output goes to a file: a pipe nobody reads fills up after 64 KiB of
    access log and then blocks the server.
    """
    port = free_port()
    env = {**os.environ, "POLICYQA_PORT": str(port), "POLICYQA_HOST": "127.0.0.1", **env_overrides}
    log_fd, log_path = tempfile.mkstemp(prefix="policyqa-server-", suffix=".log")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"], cwd=REPO, env=env, stdout=log_fd, stderr=subprocess.STDOUT
    )
    os.close(log_fd)
    process.log_path = log_path
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{Path(log_path).read_text()}")
        try:
            if httpx.get(f"{base_url}/api/health", timeout=1.0).status_code in ready:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not answer within {timeout} s")


def serve_seed_copy(seed_data_dir: Path, data_dir: Path, env_overrides: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """``start_server`` over a copy of the seed index in ``data_dir`` (never built on start), with ``env_overrides``."""
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    return start_server({"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", **env_overrides})


def stop_server(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log = Path(process.log_path)
    output = log.read_text(encoding="utf-8", errors="replace")
    log.unlink(missing_ok=True)
    return output


@pytest.fixture(scope="session")
def server(seed_data_dir) -> Iterator[str]:
    process, base_url = start_server({"POLICYQA_DATA_DIR": str(seed_data_dir), "POLICYQA_BUILD_ON_START": "false"})
    yield base_url
    output = stop_server(process)
    assert "Traceback" not in output, output


@pytest.fixture()
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30.0) as http:
        yield http


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory) -> Iterator[str]:
    """A real ``milvus-lite server`` on a free port, polled until it accepts connections."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("milvus")
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        ["milvus-lite", "server", "--data-dir", str(data_dir / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"milvus-lite server exited early:\n{(data_dir / 'server.log').read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=15)
    log.close()
