"""The writer loads the passage encoder in the background after a start (issue 28, item 6), without stalling the
server: the passage runtime shares the question encoder's tokenisers (loading them again held the interpreter for
about a second), and OpenVINO compiles with the interpreter released."""

from __future__ import annotations

import time

import httpx
import pytest

from index.embedders import load_embedder
from tests.conftest import serve_seed_copy, stop_server

TOKEN = "warm-up-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WATCH_S = 6.0  # the warm-up starts a second after the writer and takes 2-4 s on two cores


def test_every_runtime_of_an_embedder_shares_one_pair_of_tokenisers(models_dir):
    embedder = load_embedder("e5-small", models_dir=models_dir)
    embedder.embed_passages(["预热"])
    encoders = list(embedder._encoders.values())
    assert len(encoders) >= 2, embedder.backend  # questions and passages on runtimes of their own
    assert len({id(encoder._tokenizer) for encoder in encoders}) == 1
    assert len({id(encoder._counter) for encoder in encoders}) == 1


@pytest.fixture()
def started(seed_data_dir, tmp_path):
    process, url = serve_seed_copy(seed_data_dir, tmp_path / "data", {"POLICYQA_ADMIN_TOKEN": TOKEN})
    yield url
    log = stop_server(process)
    assert "Traceback" not in log and "loading the passage encoder in advance failed" not in log, log


def test_health_answers_at_once_while_the_passage_encoder_loads_after_a_start(started):
    slowest = 0.0
    with httpx.Client(base_url=started, timeout=10) as http:
        deadline = time.monotonic() + WATCH_S
        while time.monotonic() < deadline:
            began = time.perf_counter()
            assert http.get("/api/health").status_code == 200
            slowest = max(slowest, time.perf_counter() - began)
            time.sleep(0.02)
        assert slowest < 0.5, f"/api/health took {slowest:.2f} s while the passage encoder loaded"
        response = http.post(
            "/api/documents", headers=AUTH, files={"files": ("通知.txt", "每站配备专职人员3名。".encode())}
        )
        assert response.status_code == 202, response.text
        job = response.json()["jobs"][0]
        while job["state"] in ("queued", "running"):
            time.sleep(0.1)
            job = http.get(f"/api/jobs/{job['id']}", headers=AUTH).json()
        assert job["state"] == "done", job
