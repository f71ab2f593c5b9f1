"""A short soak in CI: ask, search, streamed ask and admin upload/delete at once, against a real server.

Zero errors, and resident memory (with the upload reader) grows by at most
the stated bound after the first interval; ``python -m eval.soak`` runs the
ten-minute version by hand and reports latency per minute.
"""

from __future__ import annotations

import io
import shutil

from eval.soak import DEFAULT_MAX_RSS_GROWTH_MB, run_soak
from tests.conftest import start_server, stop_server

TOKEN = "soak-token-3c8d21"


def test_short_soak_has_no_errors_and_bounded_memory(seed_data_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    process, url = start_server(
        {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN}
    )
    out = io.StringIO()
    try:
        report = run_soak(url, TOKEN, process.pid, duration=36, concurrency=3, interval=12, out=out)
    finally:
        log = stop_server(process)
    print("\n" + out.getvalue())
    assert "Traceback" not in log, log[log.find("Traceback") :][:4000]
    kinds = {kind for interval in report.intervals for kind in interval.latencies}
    assert kinds == {"ask", "search", "stream", "admin"}, kinds
    assert report.errors == 0, report.error_samples
    assert report.rss_growth_mb <= DEFAULT_MAX_RSS_GROWTH_MB, out.getvalue()
