"""Sanity checks for the hand-written gold question set (index/quality/questions.jsonl).

Besides id, question, doc, answers, type and answerable, a question may carry:
``answer_type`` (every answerable one: quantity, date, person, organisation,
place, document, list or text: what the question asks for); ``short`` (span
types only: the minimal answers a reader wants first, each verbatim in the
document after whitespace removal, any one counts); ``topic`` (every
unanswerable one: "near" when the corpus discusses the subject or body but not
the asked fact, "off" when it has nothing to do with the corpus).

Standard library + pytest only; does not import any project package.
"""

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS_PATH = ROOT / "index" / "quality" / "questions.jsonl"
DOCS_DIR = ROOT / "docs_raw"
MANIFEST_PATH = DOCS_DIR / "manifest.json"

EXPECTED_KEYS = {"id", "question", "doc", "answers", "type", "answerable"}
OPTIONAL_KEYS = {"answer_type", "short", "topic"}
ANSWER_TYPES = {"quantity", "date", "person", "organisation", "place", "document", "list", "text"}
SPAN_TYPES = {"quantity", "date", "person", "organisation", "place", "document"}
TOPICS = {"near", "off"}
TYPES = {
    "factual",
    "name",
    "list",
    "why_how",
    "paraphrase",
    "traditional",
    "keyword",
    "unanswerable",
}
# Explicit punctuation set (half- and full-width); any Unicode P*/S* char also counts.
PUNCT = set(",.;:!?()[]{}<>\"'`~-_/\\|@#$%^&*+=·•，。；：！？（）【】《》〈〉「」『』“”‘’、…—～﹏·")


def _load_questions():
    rows = []
    with QUESTIONS_PATH.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rows.append((lineno, json.loads(line)))
    return rows


def _load_manifest_files():
    data = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    return [d["file"] for d in data["documents"]]


@pytest.fixture(scope="module")
def questions():
    return [q for _, q in _load_questions()]


@pytest.fixture(scope="module")
def manifest_files():
    return _load_manifest_files()


@pytest.fixture(scope="module")
def compact_docs(manifest_files):
    return {name: "".join((DOCS_DIR / name).read_text(encoding="utf-8").split()) for name in manifest_files}


def _has_punct(s):
    return any(ch in PUNCT or unicodedata.category(ch)[0] in ("P", "S") for ch in s)


def test_at_least_30_questions(questions):
    assert len(questions) >= 30


def test_schema(questions):
    for q in questions:
        assert EXPECTED_KEYS <= set(q) <= EXPECTED_KEYS | OPTIONAL_KEYS, q
        assert isinstance(q["question"], str) and q["question"].strip(), q
        assert q["type"] in TYPES, q
        assert isinstance(q["answerable"], bool), q
        assert isinstance(q["answers"], list), q
        if q["answerable"]:
            assert q["type"] != "unanswerable", q
            assert 1 <= len(q["answers"]) <= 3, q
            assert isinstance(q["doc"], str), q
        else:
            assert q["type"] == "unanswerable", q


def test_ids_unique_and_well_formed(questions):
    ids = [q["id"] for q in questions]
    dupes = [i for i, c in Counter(ids).items() if c > 1]
    assert not dupes, f"duplicate ids: {dupes}"
    for i in ids:
        assert len(i) == 4 and i[0] == "q" and i[1:].isdigit(), i


def test_manifest_files_exist(manifest_files):
    assert manifest_files
    for name in manifest_files:
        assert (DOCS_DIR / name).is_file(), name


def test_docs_in_manifest(questions, manifest_files):
    known = set(manifest_files)
    for q in questions:
        if q["doc"] is not None:
            assert q["doc"] in known, (q["id"], q["doc"])


def test_answers_occur_in_doc(questions, compact_docs):
    for q in questions:
        if q["doc"] is None:
            continue
        text = compact_docs[q["doc"]]
        for ans in q["answers"]:
            assert isinstance(ans, str) and ans, (q["id"], ans)
            assert ans in text, (q["id"], ans, q["doc"])


def test_answers_have_no_punctuation_or_whitespace(questions):
    for q in questions:
        for ans in q["answers"]:
            assert not _has_punct(ans), (q["id"], ans)
            assert "".join(ans.split()) == ans, (q["id"], ans)
            assert 2 <= len(ans) <= 20, (q["id"], ans)


def test_every_document_has_at_least_3_questions(questions, manifest_files):
    counts = Counter(q["doc"] for q in questions if q["doc"] is not None)
    for name in manifest_files:
        assert counts[name] >= 3, (name, counts[name])


def test_unanswerable(questions):
    unans = [q for q in questions if not q["answerable"]]
    assert len(unans) >= 10
    for q in unans:
        assert q["answers"] == [], q["id"]
        assert q["doc"] is None, q["id"]
    for q in questions:
        if q["doc"] is None:
            assert not q["answerable"], q["id"]


def _num(q):
    return int(q["id"][1:])


def test_answer_types(questions):
    for q in questions:
        if q["answerable"]:
            assert q.get("answer_type") in ANSWER_TYPES, q["id"]
            if q["answer_type"] not in SPAN_TYPES:
                assert "short" not in q, q["id"]
            assert "topic" not in q, q["id"]
        else:
            assert "answer_type" not in q and "short" not in q, q["id"]


def test_short_answers_occur_in_doc(questions, compact_docs):
    for q in questions:
        if "short" not in q:
            continue
        assert isinstance(q["short"], list) and q["short"], q["id"]
        text = compact_docs[q["doc"]]
        for s in q["short"]:
            assert isinstance(s, str) and s and "".join(s.split()) == s, (q["id"], s)
            assert s in text, (q["id"], s, q["doc"])


def test_span_questions_mostly_have_short_answers(questions):
    span = [q for q in questions if q.get("answer_type") in SPAN_TYPES]
    missing = [q["id"] for q in span if "short" not in q]
    assert len(span) >= 40 and not missing, missing


def test_topics(questions):
    for q in questions:
        if not q["answerable"]:
            assert q.get("topic") in TOPICS, q["id"]
    topics = Counter(q["topic"] for q in questions if not q["answerable"])
    assert topics["off"] >= 10 and topics["near"] >= 40, topics


def test_enlarged_set(questions):
    new = [q for q in questions if _num(q) >= 113]
    near = [q for q in new if not q["answerable"] and q["topic"] == "near"]
    answerable = [q for q in new if q["answerable"]]
    assert len(near) >= 30, len(near)
    assert len(answerable) >= 30, len(answerable)
