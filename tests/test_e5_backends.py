"""The e5 model on torch and ONNX Runtime computes the same vectors; late chunking and the thread plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.embedders.e5_small import resolve_backends
from index.errors import ConfigurationError
from index.ingest.late_chunking import locate
from index.stores.local.build import build_index
from index.stores.local.generations import current_build_dir, read_manifest
from index.threads import build_plan, serving_plan
from tests.conftest import DOCS_RAW, REPO


@pytest.fixture(scope="module")
def texts():
    questions = [
        json.loads(line)["question"] for line in (REPO / "index" / "quality" / "questions.jsonl").open(encoding="utf-8")
    ]
    body = "".join(p.read_text(encoding="utf-8") for p in sorted(DOCS_RAW.glob("*.txt"))).replace("\n", "")
    passages = [body[at : at + 300] for at in range(0, len(body) - 300, 3000)]
    return questions[::3], passages


@pytest.fixture(scope="module")
def onnx_embedder(models_dir):
    from index.embedders.e5_small import load_e5_small

    return load_e5_small(models_dir, backend="onnx", precision="float32")


def test_onnx_float32_and_int8_agree_with_torch(embedder, onnx_embedder, models_dir, texts):
    from index.embedders.e5_small import load_e5_small

    questions, passages = texts
    reference = load_e5_small(models_dir, backend="torch", precision="float32")
    want_q, want_p = reference.embed_queries(questions), reference.embed_passages(passages)
    got_q, got_p = onnx_embedder.embed_queries(questions), onnx_embedder.embed_passages(passages)
    assert np.sum(got_q * want_q, axis=1).min() > 0.9999 and np.sum(got_p * want_p, axis=1).min() > 0.9999
    int8 = load_e5_small(models_dir, backend="onnx")
    assert int8.query_backend == ("onnx", "int8")
    cosines = np.concatenate([
        np.sum(int8.embed_queries(questions) * want_q, axis=1), np.sum(int8.embed_passages(passages) * want_p, axis=1)
    ])  # fmt: skip
    assert cosines.min() >= 0.997  # 0.995 with every MatMul quantised; see e5_onnx.kept_float32
    assert onnx_embedder.name == reference.name == embedder.name  # one model, whichever runs it


def test_openvino_passages_agree_with_torch_float32(models_dir, texts):
    from index.embedders.e5_small import load_e5_small

    questions, passages = texts
    reference = load_e5_small(models_dir, backend="torch", precision="float32")
    for precision in ("float32", "bfloat16"):
        openvino = load_e5_small(models_dir, backend="openvino", precision=precision)
        assert openvino.passage_backend == ("openvino", precision)
        assert openvino.query_backend[0] == "onnx"  # a question's shape changes every time: not OpenVINO's strength
        cosines = np.sum(openvino.embed_passages(passages) * reference.embed_passages(passages), axis=1)
        assert cosines.min() > (0.9999 if precision == "float32" else 0.999), precision
        assert "passages openvino-" + precision in openvino.backend


def test_auto_backends():
    from index.embedders.sentence_transformers import cpu_has_fast_bfloat16

    assert resolve_backends("auto", "auto", "cuda") == (("torch", "float32"), ("torch", "float32"))
    queries, passages = resolve_backends("auto", "auto", "cpu")
    assert queries == ("onnx", "int8")
    assert passages == (("openvino", "bfloat16") if cpu_has_fast_bfloat16() else ("torch", "float32"))
    assert resolve_backends("auto", "float32", "cpu")[1] == ("torch", "float32")  # OpenVINO float32 was slower
    assert resolve_backends("openvino", "float32", "cpu") == (("onnx", "float32"), ("openvino", "float32"))
    with pytest.raises(ConfigurationError):
        resolve_backends("openvino", "auto", "cuda")
    assert resolve_backends("auto", "float32", "cpu")[0] == ("onnx", "float32")
    assert resolve_backends("onnx", "auto", "cpu") == (("onnx", "int8"), ("onnx", "int8"))
    with pytest.raises(ConfigurationError):
        resolve_backends("onnx", "auto", "cuda")
    with pytest.raises(ConfigurationError):
        resolve_backends("tensorflow", "auto", "cpu")


def test_sentence_spans_are_located_in_the_normalised_input():
    text = "一、總體要求。推進改革；ＡＢＣ試點。"
    located = locate("标题 > 一\n", text, 0, len(text), [(2, 7), (7, 12), (12, len(text))])
    assert located is not None
    whole, spans = located
    assert [whole[a:b] for a, b in spans] == ["总体要求。", "推进改革;", "abc试点。"]  # NFKC folds "；"


def test_a_late_chunked_build_pools_every_sentence(tmp_path, onnx_embedder):
    report = build_index(
        docs_dir=DOCS_RAW, data_dir=tmp_path, embedder=onnx_embedder, show_progress=False, late_chunking=True
    )
    assert report.embedded_passages < report.chunks + report.sentences / 2  # sentences came from chunk passes
    manifest = read_manifest(current_build_dir(tmp_path))
    assert manifest.versions["sentence_vectors"] == "late-chunked"
    assert manifest.versions["embedder_backend"].startswith("queries onnx-float32")
    segment = tmp_path / "index" / "segments" / manifest.segments[0].segment_id
    sentences = np.load(segment / "sentences.npy")
    assert np.allclose(np.linalg.norm(sentences, axis=1), 1.0, atol=1e-3)


def test_thread_plans():
    serve = serving_plan(cores=2)
    assert (serve.encoder, serve.faiss, serve.blas, serve.compute_slots) == (1, 1, 1, 4)
    assert serving_plan(cores=2, compute_slots=3).compute_slots == 3
    build = build_plan(cores=2)
    assert (build.encoder, build.faiss, build.workers) == (2, 2, 2)
