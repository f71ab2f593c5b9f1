"""A short chaos soak: a real server SIGKILLed during an add, a delete and a merge, checked after each restart.

``python -m eval.chaos`` runs the long version (50 kills and more, docs/operations.md); this one aims one kill at
each of add, delete and merge and asserts what the long one reports: no acknowledged change lost, no delete
undone, no deleted text in answers or on disk, every restart clean and the seed questions answered as before.
"""

from __future__ import annotations

from eval.chaos import run_local

# Passages embedded by ONNX Runtime: OpenVINO, which the default picks on CPUs with bfloat16, compiles its model
# again in each restarted server (12 s of each restart's first change here); the long soak keeps the default.
FAST_START = {"POLICYQA_EMBED_BACKEND": "onnx"}


def test_three_kills_lose_nothing_and_leave_no_deleted_text(seed_data_dir, tmp_path):
    counts = run_local(
        seed_data_dir, tmp_path, kills=3, seed=27, max_minutes=4, aims=("add", "delete", "merge"), env=FAST_START
    )
    report = counts.report(mode="local")
    print(report)
    assert counts.kills == 3 and counts.checks >= 3, report
    assert counts.changes_answered["add"] and counts.changes_sent["delete"], report
    assert counts.lost_acknowledged_changes == 0, report["samples"]
    assert counts.resurrected_deletes == 0, report["samples"]
    assert counts.torn_changes == 0, report["samples"]
    assert not counts.deleted_text_in_answers and not counts.deleted_text_on_disk, report["samples"]
    assert counts.reload_errors == 0 and counts.seed_answers_changed == 0, report["samples"]
    assert counts.ok, report
