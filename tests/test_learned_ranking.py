"""The learned rankers and calibrated decline: shipped, checked, used, and rebuilt byte for byte."""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import replace

import numpy as np
import pytest

from eval import train_ranker
from eval.ranker_data import Sample, _ask
from index.answering.compose import MISSING_QUALIFIER, OFF_TOPIC, AnswerComposer
from index.answering.features import (
    FEATURE_VERSION,
    SENTENCE_FEATURES,
    question_context,
    sentence_candidates,
    sentence_rows,
)
from index.answering.learned import MANIFEST, MODELS_DIR, load_models, shipped_models
from index.answering.retrieval import Retriever
from index.errors import ConfigurationError
from index.quality.gold import load_questions

MAX_MODEL_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def learned(seed_index, embedder):
    models = shipped_models()
    return Retriever(seed_index, embedder, models=models), AnswerComposer(models=models)


def ask(learned, question: str):
    retriever, composer = learned
    return composer.compose(question, retriever.search(question, top_k=5))


def test_shipped_models_are_small_carded_and_of_this_feature_version():
    models = load_models()
    assert models.card["feature_version"] == FEATURE_VERSION
    assert 0.0 < models.threshold < 1.0
    for path in MODELS_DIR.iterdir():
        assert path.stat().st_size <= MAX_MODEL_BYTES, path
    card = (MODELS_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in card and "DRCD" in card and "gold-test" in card
    probabilities = models.calibration.probabilities
    assert list(probabilities) == sorted(probabilities) and 0.0 <= probabilities[0] <= probabilities[-1] <= 1.0


def test_models_trained_on_other_features_are_refused(tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(MODELS_DIR, copy)
    manifest = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    (copy / MANIFEST).write_text(json.dumps({**manifest, "feature_version": FEATURE_VERSION + 1}), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="retrain"):
        load_models(copy)
    (copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    text = (copy / "sentence.txt").read_text(encoding="utf-8")
    (copy / "sentence.txt").write_text(text.replace("feature_names=answer_type", "feature_names=kind", 1))
    with pytest.raises(ConfigurationError, match="other features"):
        load_models(copy)


def test_confidence_is_a_probability_that_separates_answered_from_off_topic(learned):
    answerable = [q for q in load_questions() if q.answerable][:20]
    confident = [ask(learned, q.question).confidence for q in answerable]
    off = [ask(learned, q).confidence for q in ("红烧肉怎么做才好吃？", "2022年世界杯冠军是哪个国家？")]
    assert all(0.0 <= c <= 1.0 for c in confident + off)
    assert min(off) < shipped_models().threshold <= np.median(confident)
    declined = ask(learned, "红烧肉怎么做才好吃？")
    assert not declined.answerable and declined.declined_reason == OFF_TOPIC


def test_a_paraphrased_ordinal_is_not_a_missing_qualifier(learned):
    """The document says 首批; 第一批 is the same batch (index/answering/terms.tsv)."""
    answer = ask(learned, "海安县第一批下放给试点镇的行政权力事项共有多少项？")
    assert answer.declined_reason != MISSING_QUALIFIER
    assert answer.answerable and "341项" in answer.text


def test_a_qualifier_absent_from_every_document_still_declines(learned):
    answer = ask(learned, "海安县第五批下放给试点镇的行政权力事项共有多少项？")
    assert not answer.answerable and answer.declined_reason == MISSING_QUALIFIER


def test_features_are_one_row_per_sentence_whatever_the_hash_seed(learned):
    retriever, _ = learned
    question = "镇海区6个镇（街道）人员分流后，一共精简了多少名机关各类工作人员？"
    result = retriever.search(question, top_k=5)
    found = sentence_candidates([h.as_candidate() for h in result.hits[:3]], 3)
    rows = sentence_rows(question_context(question, result.analysis), found)
    assert rows.shape == (len(found), len(SENTENCE_FEATURES)) and np.isfinite(rows).all()


def test_training_rebuilds_the_same_files_byte_for_byte(seed_index, embedder, tmp_path):
    """The whole training path (rankers, decline, calibration, threshold, card) over the gold set's candidates,
    split three ways, run twice."""
    retriever = Retriever(seed_index, embedder)
    samples = []
    for n, q in enumerate(load_questions()[:90]):
        analysis, doc_ids, candidates = _ask(retriever, q.question, None)
        split = ("train", "train", "validation", "test")[n % 4]
        variant = "answerable" if q.answerable else "near"
        samples.append(Sample("drcd", split, variant, q.id, q.question, q.answers, q.doc_id, analysis, doc_ids,
                              candidates))  # fmt: skip
    samples += [replace(s, source="gold", split=("gold-train", "gold-test")[n % 2]) for n, s in enumerate(samples[:8])]
    work = tmp_path / "work"
    work.mkdir()
    with (work / "candidates.pkl").open("wb") as handle:
        pickle.dump(samples, handle)
    outputs = []
    for run in ("a", "b"):
        train_ranker.main(["--work", str(work), "--out", str(tmp_path / run)])
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"passage.txt", "sentence.txt", "decision.txt", MANIFEST, "MODEL_CARD.md"}
