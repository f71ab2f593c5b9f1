"""Serving a process on a local port and loading it with wrk: what the speed benchmarks share."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EMPTY_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.post("/empty")
def empty(body: dict) -> dict:
    return {}
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict, port: int, path: str = "/api/health", timeout: float = 600) -> tuple:
    import httpx

    log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)  # noqa: SIM115
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(Path(log.name).read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return process, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"no answer on port {port}")


def wrk(url: str, bodies: list[str], concurrency: int, duration: float) -> dict:
    """wrk with a Lua script that cycles through the request bodies and prints JSON figures."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8")  # noqa: SIM115
    script.write("local bodies = {" + ",".join(json.dumps(b, ensure_ascii=False) for b in bodies) + "}\n")
    script.write(
        """local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""
    )
    script.close()
    threads, seconds = (1 if concurrency == 1 else 2), max(1, round(duration))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s", "-s", script.name, url],
        stdout=subprocess.PIPE, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    figures = json.loads(out.strip().splitlines()[-1])
    return {
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "rps": round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        "errors": figures["errors"],
        "requests": figures["requests"],
    }


def empty_endpoint_floor(duration: float) -> float:
    port = free_port()
    app_dir = Path(tempfile.mkdtemp())
    (app_dir / "empty_app.py").write_text(EMPTY_APP, encoding="utf-8")
    process, _ = start(
        [sys.executable, "-m", "uvicorn", "empty_app:app", "--port", str(port), "--log-level", "warning",
         "--app-dir", str(app_dir)],
        {}, port, "/docs",
    )  # fmt: skip
    try:
        return wrk(f"http://127.0.0.1:{port}/empty", ['{"q": 1}'], 1, duration)["p50_ms"]
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(app_dir)
