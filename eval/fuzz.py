"""Schema fuzzing: schemathesis against the service's own OpenAPI schema, on a real server.

    python -m eval.fuzz [--max-examples 100] [--seed N] [--url URL --token T] [--data-dir var]

Without ``--url`` it serves a copy of DATA_DIR's index with an admin token of
its own. Every operation is run three times: without the token (the admin
operations must all refuse), with a read key for default and a private
knowledge base (the index must be unchanged after both), then with the token
(uploads, replacements and deletes really run, on the copy; knowledge bases
and keys are made and deleted). Every check
schemathesis has runs (no 5xx, status codes, content types, headers and
bodies as documented, invalid input refused, no hang past the request
timeout) except ``positive_data_acceptance``: a schema-valid request may still
be refused by design (an unknown document id, an empty or unsupported file,
a whitespace-only question: 422s docs/api.md lists). Prints the cases tried and
the failures per run; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from eval.server import start_server

EXCLUDED_CHECKS = ("positive_data_acceptance",)
REQUEST_TIMEOUT_S = 60
# schemathesis' own list of answers that refuse invalid input, plus 413: a body over the limit is refused too.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
"""


@dataclass(frozen=True)
class FuzzRun:
    label: str
    cases: int
    failures: int
    errors: int
    failure_kinds: list[str]
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.errors == 0


def run_schemathesis(
    url: str, *, label: str, token: str | None, max_examples: int, seed: int | None, max_time: float | None
) -> FuzzRun:
    with tempfile.TemporaryDirectory(prefix="policyqa-fuzz-") as tmp:
        report, config = Path(tmp) / "report.json", Path(tmp) / "schemathesis.toml"
        config.write_text(CONFIG)
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/openapi.json",
            "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
            "--max-examples", str(max_examples), "--request-timeout", str(REQUEST_TIMEOUT_S),
            "--max-failures", "100", "--workers", "1", "--no-color", "--warnings", "off",
            "--generation-database", "none",
            "--report", "json", "--report-json-path", str(report),
        ]  # fmt: skip
        if token:
            command += ["--header", f"Authorization: Bearer {token}"]
        if seed is not None:
            command += ["--seed", str(seed)]
        if max_time:
            command += ["--max-time", str(int(max_time))]
        completed = subprocess.run(command, capture_output=True, text=True, cwd=tmp)  # its caches go there too
        if not report.exists():
            raise RuntimeError(f"schemathesis wrote no report:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        data = json.loads(report.read_text())
    failures = data.get("failures", [])
    return FuzzRun(
        label=label,
        cases=data["test_cases"]["generated"],
        failures=sum(f.get("count", 1) for f in failures),
        errors=len(data.get("errors", [])) + data["test_cases"].get("errored", 0),
        failure_kinds=[f"{f['code']} {f['title']}: {', '.join(f.get('operations', []))}" for f in failures],
        seconds=data.get("running_time", 0.0),
        output=completed.stdout,
    )


def read_key(url: str, token: str) -> str:
    """A read key for default and a private knowledge base ``fuzz`` (made here), through the admin API."""
    admin = {"Authorization": f"Bearer {token}"}
    made = httpx.post(f"{url}/api/kbs", headers=admin, json={"kb_id": "fuzz", "title": "fuzz", "public": False})
    if made.status_code not in (201, 409):
        raise RuntimeError(f"could not make the knowledge base fuzz: {made.text}")
    key = httpx.post(f"{url}/api/keys", headers=admin, json={"kbs": ["default", "fuzz"], "scope": "read"})
    return key.raise_for_status().json()["key"]


def fuzz(url: str, token: str | None, *, max_examples: int, seed: int | None = None, max_time: float | None = None):
    """Run without the token, then with a read key (checking nothing changed), then with the token.

    Returns the runs and any extra problems.
    """
    problems: list[str] = []
    before = httpx.get(f"{url}/api/health", timeout=30).json()
    runs = [
        run_schemathesis(url, label="no token", token=None, max_examples=max_examples, seed=seed, max_time=max_time)
    ]
    if token:
        key = read_key(url, token)
        runs.append(
            run_schemathesis(url, label="read key", token=key, max_examples=max_examples, seed=seed, max_time=max_time)
        )
    after = httpx.get(f"{url}/api/health", timeout=30).json()
    if (after["build_id"], after["documents"]) != (before["build_id"], before["documents"]):
        problems.append(f"the index changed without the token: {before} -> {after}")
    if token:
        runs.append(
            run_schemathesis(
                url, label="admin token", token=token, max_examples=max_examples, seed=seed, max_time=max_time
            )
        )
    return runs, problems


def describe(runs: list[FuzzRun], problems: list[str]) -> str:
    lines = [f"{'run':<12} {'cases':>7} {'failures':>9} {'errors':>7} {'seconds':>8}"]
    for run in runs:
        lines.append(f"{run.label:<12} {run.cases:>7} {run.failures:>9} {run.errors:>7} {run.seconds:>8.1f}")
        lines.extend(f"    {kind}" for kind in run.failure_kinds)
    total = sum(r.cases for r in runs)
    lines.append(f"{'total':<12} {total:>7} {sum(r.failures for r in runs):>9} {sum(r.errors for r in runs):>7}")
    lines.extend(f"problem: {p}" for p in problems)
    return "\n".join(lines)


def server_log_problems(log: str, token: str) -> list[str]:
    problems = []
    if "Traceback" in log:
        problems.append("the server log has a traceback")
    if token in log:
        problems.append("the admin token appears in the server log")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="fuzz a running server instead of starting one (give --token for admin runs)")
    parser.add_argument("--token", help="the running server's admin token")
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="index to copy and serve (default var)")
    parser.add_argument("--max-examples", type=int, default=100, help="examples per operation and phase")
    parser.add_argument("--max-time", type=int, help="time budget per run, in seconds")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--verbose", action="store_true", help="print schemathesis' own output")
    args = parser.parse_args(argv)

    server = None
    url, token = args.url, args.token
    if url is None:
        token = secrets.token_urlsafe(24)
        server = start_server(args.data_dir, {"POLICYQA_ADMIN_TOKEN": token, "POLICYQA_BUILD_ON_START": "true"})
        url = server.url
    try:
        runs, problems = fuzz(url, token, max_examples=args.max_examples, seed=args.seed, max_time=args.max_time)
    finally:
        log = server.stop() if server else ""
    if server:
        problems += server_log_problems(log, token)
    if args.verbose:
        for run in runs:
            print(run.output)
    print(describe(runs, problems))
    return 0 if all(r.ok for r in runs) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
