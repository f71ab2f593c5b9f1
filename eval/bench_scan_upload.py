"""How long a scanned PDF's upload request takes, and how long until its job has indexed it.

    python -m eval.bench_scan_upload --pages 12 [--repo DIR] [--dpi 200] [--json FILE]

Serves a copy of this checkout's built index (``var/index``, models from ``var/models``) from ``--repo`` (default
this checkout; another tree, e.g. ``git archive`` of an older revision, measures that), uploads a scan of
``--pages`` pages of the seed documents and reports the request's wall time, the job's, and the progress messages
the job showed on the way.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from eval.bench_ocr import seed_pages
from eval.scans import Scan, render_page

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-scan-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scan(pages: int, dpi: int) -> bytes:
    """Black and white, as an office scanner writes a text document (about 85 KB a page at 200 dpi)."""
    seeds = seed_pages(40)
    lines = [[f"第{n + 1}页", *seeds[n % len(seeds)]] for n in range(pages)]
    first, *rest = [render_page(page, Scan(dpi=dpi, seed=n)).convert("1") for n, page in enumerate(lines)]
    buffer = io.BytesIO()
    first.save(buffer, "PDF", save_all=True, append_images=rest, resolution=float(dpi))
    return buffer.getvalue()


def serve(repo: Path, data_dir: Path) -> tuple[subprocess.Popen, str, Path]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ, "POLICYQA_PORT": str(port), "POLICYQA_HOST": "127.0.0.1", "POLICYQA_ADMIN_TOKEN": TOKEN,
        "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_MODELS_DIR": str(REPO / "var" / "models"),
        "POLICYQA_BUILD_ON_START": "false",
    }  # fmt: skip
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"], cwd=repo, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(log.read_text())


def measure(url: str, data: bytes, name: str) -> dict:
    with httpx.Client(base_url=url, timeout=3600) as client:
        started = time.perf_counter()
        response = client.post("/api/documents", headers=AUTH, files={"files": (name, data)})
        request_s = time.perf_counter() - started
        result: dict = {"status": response.status_code, "request_s": round(request_s, 2)}
        if response.status_code != 202:
            return {**result, "body": response.json()}
        job = response.json()["jobs"][0]
        messages: list[str] = []
        while job["state"] in ("queued", "running"):
            time.sleep(0.5)
            job = client.get(f"/api/jobs/{job['id']}", headers=AUTH).json()
            if job["message"] and (not messages or messages[-1] != job["message"]):
                messages.append(job["message"])
        total_s = time.perf_counter() - started
    shown = messages if len(messages) <= 6 else [*messages[:3], "...", *messages[-3:]]
    return {**result, "job_state": job["state"], "until_indexed_s": round(total_s, 1), "error": job["error"],
            "final_message": job["message"], "messages_seen": len(messages), "messages": shown}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--repo", type=Path, default=REPO, help="the tree to serve (default: this checkout)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    data = scan(args.pages, args.dpi)
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as scratch:
        data_dir = Path(scratch)
        shutil.copytree(REPO / "var" / "index", data_dir / "index")
        process, url, _ = serve(args.repo.resolve(), data_dir)
        try:
            result = {"pages": args.pages, "dpi": args.dpi, "bytes": len(data), "repo": str(args.repo)}
            result |= measure(url, data, f"scan-{args.pages}-pages.pdf")
        finally:
            process.terminate()
            process.wait(30)
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
