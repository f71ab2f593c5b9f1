"""Schema fuzzing in CI: schemathesis against the real server's own OpenAPI schema: no token, a read key, the token.

A bounded run (a fixed seed, 10 examples per operation and phase, at most 30
seconds a run: about a thousand cases); ``python -m eval.fuzz`` runs longer
ones by hand.
"""

from __future__ import annotations

import shutil

from eval.fuzz import describe, fuzz, server_log_problems
from tests.conftest import start_server, stop_server

TOKEN = "fuzz-token-5b1e0d"


def test_schemathesis_finds_no_server_error_schema_violation_or_hang(seed_data_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    process, url = start_server(
        {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN}
    )
    try:
        runs, problems = fuzz(url, TOKEN, max_examples=10, seed=20261127, max_time=30)
    finally:
        log = stop_server(process)
    problems += server_log_problems(log, TOKEN)
    report = describe(runs, problems)
    print("\n" + report)
    assert [r.label for r in runs] == ["no token", "read key", "admin token"]
    assert sum(r.cases for r in runs) >= 450, report
    assert all(r.ok for r in runs) and not problems, report + "\n" + "\n".join(r.output[-4000:] for r in runs)
