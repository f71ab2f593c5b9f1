"""The chaos soak on replicas over one real ``milvus-lite server``: ``python -m eval.chaos --replicas 2 --milvus``.

The corpus is ingested once into Milvus by ``policyqa ingest`` (POLICYQA_STORE=milvus); each replica serves from an
empty data directory of its own. Changes go through either replica; one replica at a time is SIGKILLed and started
again while the other keeps serving, and after each restart both must list the same documents. milvus-lite is
the Milvus server: it is not killed (it is the database, not the service under test). Its own data directory is
scanned for deleted text too, for information only: how Milvus keeps deleted rows until it compacts is
Milvus's business, not a promise policyqa makes.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from eval.chaos_checks import Counts
from eval.chaos_loop import Chaos
from eval.chaos_servers import MilvusLite, ServerProcess
from eval.chaos_state import traces
from eval.server import REPO

PREFIX = "chaos"


def run_milvus(workdir: Path, *, replicas: int, kills: int, seed: int, max_minutes: float) -> Counts:
    milvus = MilvusLite(workdir / "milvus", workdir / "milvus.log")
    uri = milvus.start()
    token = secrets.token_urlsafe(24)
    shared = {**os.environ, "POLICYQA_STORE": "milvus", "POLICYQA_MILVUS_URI": uri, "POLICYQA_MILVUS_PREFIX": PREFIX,
              "POLICYQA_ADMIN_TOKEN": token, "POLICYQA_BUILD_ON_START": "false"}  # fmt: skip
    servers = []
    try:
        print(f"ingesting docs_raw/ into milvus-lite at {uri}", flush=True)
        subprocess.run([sys.executable, "-m", "service.cli", "ingest", "docs_raw", "--quiet"], cwd=REPO, check=True,
                       env={**shared, "POLICYQA_DATA_DIR": str(workdir / "ingest")})  # fmt: skip
        for number in range(1, replicas + 1):
            data_dir = workdir / f"replica-{number}"
            data_dir.mkdir()
            env = {**shared, "POLICYQA_DATA_DIR": str(data_dir)}
            servers.append(ServerProcess(f"replica-{number}", data_dir, env, workdir / f"replica-{number}.log"))
            servers[-1].start()
        chaos = Chaos(servers, token, seed=seed, data_dirs=[s.data_dir for s in servers], merges=False)
        chaos.run(kills, max_minutes)
    finally:
        for server in servers:
            server.stop()
        milvus.stop()
    for server in servers:
        chaos.checker.server_log(server.log())
        chaos.counts.restart_s += server.start_times_s[1:]
    acknowledged = [r for r in chaos.ledger.retired.values() if r.acknowledged]
    found = traces(workdir / "milvus", [n for r in acknowledged for n in r.version.needles])
    chaos.counts.notes["milvus_lite_data_dir_deleted_versions_found"] = sum(
        any(n in found for n in r.version.needles) for r in acknowledged
    )
    return chaos.counts
