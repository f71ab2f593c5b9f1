"""Follow-up questions: the pure resolution rules, the follow-up gold set and its floors, /api/ask with history."""

from __future__ import annotations

import json
import threading

import pytest

from eval.followups import (
    FOLLOWUPS_PATH,
    EngineConversations,
    load_followups,
    run_followups,
    summarize_followups,
)
from index.answering.followup import (
    Turn,
    followup_strength,
    key_words,
    name_document,
    places,
    replaced_entities,
    resolve,
    user_questions,
)
from index.ingest.clean import clean_text
from index.quality.gold import contains_answer
from service.engines import open_engine
from service.settings import Settings
from tests.conftest import DOCS_RAW

# ---------- the rules, as pure functions ----------


@pytest.mark.parametrize(
    ("question", "strength"),
    [
        ("那镇海区呢？", "strong"),  # opens with 那, asks …呢
        ("副主任呢？怎么产生？", "strong"),
        ("具体有哪些？", "strong"),  # too short to stand alone
        ("聘任期是几年？", "strong"),
        ("这篇文章的作者是谁？", "strong"),  # points at the document
        ("其中涉农街道有多少个？", "strong"),
        ("这个乡在人员分流中发生过上访事件吗？", "weak"),  # points back, but could stand alone
        ("调研的这个市里，涉农街道一共有多少个？", "weak"),
        ("海安县首批下放了多少项行政权力事项？", "none"),
        ("镇江市京口区有几个街道？", "none"),  # short, but names its place
        ("《浅析我国乡镇行政管理体制改革》的作者是谁？", "none"),  # names its document
    ],
)
def test_followup_strength(question, strength):
    assert followup_strength(question) == strength


def test_places_are_found_conservatively():
    assert places("镇江市除31个镇外共有多少个街道？") == ["镇江市"]
    assert places("习近平总书记在开封市兰考县调研时强调县域治理要做到什么？") == ["开封市", "兰考县"]
    assert places("骆驼街道人员分流后精简了多少人？") == ["骆驼街道"]
    assert places("那京口区呢？") == ["京口区"]
    assert places("这个乡在人员分流中发生过上访事件吗？") == []


def test_key_words_keep_the_longest_forms_in_order():
    words = key_words("镇（街道）中层干部竞争上岗是怎样选拔的？")
    assert "中层干部" in words and "中层" not in words and "怎样" not in words
    assert words.index("街道") < words.index("中层干部")


def test_a_place_or_date_of_the_same_kind_is_swapped_not_added():
    assert replaced_entities("那李堡镇呢？", "曲塘镇的财政收入是多少？") == ["曲塘镇"]
    assert replaced_entities("那京口区呢？", "镇江市共有多少个街道？") == []  # a district is not a city
    assert replaced_entities("2017年3月呢？", "2016年3月确定了多少个示范点？") == ["2016年3月"]
    swapped = resolve("那李堡镇呢？", ["曲塘镇的财政收入是多少？"])
    assert swapped.kind == "swap" and "曲塘镇" not in swapped.query and "财政收入" in swapped.query
    dated = resolve("2017年3月呢？", ["镇江市2016年3月确定了多少个示范点？"])
    assert "2016" not in dated.query and "示范点" in dated.query


def test_an_elliptical_followup_carries_the_previous_key_words():
    resolution = resolve("具体有哪些？", ["省里规定街道必须设置几个机构？"])
    assert resolution.kind == "ellipsis"
    assert resolution.query.startswith("具体有哪些？")
    assert {"街道", "设置", "机构"} <= set(resolution.query.split())


def test_a_question_that_stands_alone_is_left_alone():
    resolution = resolve("海安县首批下放了多少项行政权力事项？", ["镇江市共有多少个街道？"])
    assert resolution.kind == "standalone" and resolution.query == "海安县首批下放了多少项行政权力事项？"
    assert not resolve("那镇海区呢？", []).followup  # nothing to lean on


def test_a_weak_reference_takes_only_the_places():
    resolution = resolve("这个乡在人员分流中发生过上访事件吗？", ["禾梨坳乡对机关公务员是怎样分流的？"])
    assert resolution.kind == "ellipsis"
    assert resolution.query.endswith("禾梨坳乡") and "公务员" not in resolution.query


def test_this_document_means_the_previous_questions_document():
    resolution = resolve("这篇文章的作者是谁？", ["乡镇机构为什么会比较臃肿？"])
    assert resolution.same_document and resolution.name_document
    assert resolution.anchor == "乡镇机构为什么会比较臃肿？"
    assert (
        name_document(resolution.question, "浅析我国乡镇行政管理体制改革")
        == "《浅析我国乡镇行政管理体制改革》的作者是谁？"
    )
    assert name_document("作者是谁？", "标题") == "《标题》作者是谁？"
    # 这个文件 after a question about a file is that file: the words go along, the title does not.
    about_a_file = resolve("这个文件是哪年印发的？", ["2023年4月党中央、国务院印发了什么关于基层治理的文件？"])
    assert about_a_file.same_document and not about_a_file.name_document and "基层" in about_a_file.query


def test_a_chain_keeps_its_topic_and_its_document():
    chain = ["海安县在哪两个镇开展了行政管理体制改革试点？", "改革后形成了什么样的政府管理架构？"]
    resolution = resolve("县政府首批给它们下放了多少项权力？", chain)
    assert "海安县" in resolution.query
    documents = resolve("发表在哪本期刊上？", ["乡镇机构为什么会比较臃肿？", "这篇文章的作者是谁？"])
    assert documents.same_document and documents.anchor == "乡镇机构为什么会比较臃肿？"


def test_only_user_turns_count():
    turns = [Turn("system", "你是助手"), Turn("user", " 问题一 "), Turn("assistant", "回答"), Turn("user", "  ")]
    assert user_questions(turns) == ["问题一"]


# ---------- the follow-up gold set ----------


def test_followup_gold_set_is_well_formed():
    rows = [json.loads(line) for line in FOLLOWUPS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 30
    assert len({r["id"] for r in rows}) == len(rows)
    manifest = {d["file"] for d in json.loads((DOCS_RAW / "manifest.json").read_text(encoding="utf-8"))["documents"]}
    for row in rows:
        assert set(row) == {"id", "history", "question", "full", "doc", "answers", "type"}, row["id"]
        assert row["type"] in {"swap", "specify", "document", "ellipsis"}
        assert row["history"] and row["answers"] and row["doc"] in manifest
        text = clean_text((DOCS_RAW / row["doc"]).read_text(encoding="utf-8"))
        assert all(contains_answer(text, (answer,)) for answer in row["answers"]), row["id"]
        assert not contains_answer(row["question"], tuple(row["answers"])), row["id"]  # no answer given away


@pytest.fixture(scope="module")
def engine(seed_data_dir):
    opened = open_engine(Settings(data_dir=seed_data_dir, build_on_start=False))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def followup_summary(engine):
    results = run_followups(EngineConversations(engine), load_followups(), ["hybrid"])
    return summarize_followups(results)["hybrid"]


# Floors, about 0.03 under the figures measured when they were set (docs/evaluation.md).
# answer 0.90 -> 0.87 (2026-12-02): typed follow-ups now decline when the asked figure or name is missing,
# and quote one sentence for a figure or a name (follow-up answer 0.944 -> 0.889).
# answer 0.87 -> 0.80 (2026-12-07): learned ranking and decline (index/answering/models); the follow-ups'
# answer 0.889 -> 0.833 (two of 36), while the completed questions' ("full") rose 0.806 -> 0.861.
FLOORS = {"doc@1": 0.95, "passage@3": 0.95, "answer": 0.80}


def test_followups_meet_their_floors(followup_summary):
    followup = followup_summary["followup"]
    failures = [f"{k}: {followup[k]:.3f} < {floor}" for k, floor in FLOORS.items() if not followup[k] >= floor]
    assert not failures, failures
    assert followup["faithful"] == 1.0


def test_history_is_what_makes_followups_work(followup_summary):
    followup, alone, full = (followup_summary[c] for c in ("followup", "alone", "full"))
    assert followup["answer"] >= alone["answer"] + 0.15
    assert followup["doc@1"] >= alone["doc@1"] + 0.2
    assert followup["answer"] >= full["answer"] - 0.05  # about as good as asking in full


def test_a_change_of_topic_is_not_spoiled(followup_summary):
    switch, full = followup_summary["switch"], followup_summary["full"]
    assert switch["answer"] >= full["answer"] - 0.06
    # 0.06 -> 0.09 (2026-12-02): evidence ranking raised full passage@3 (0.944 -> 0.972) and lowered the
    # switch condition's (0.917 -> 0.889): a question taken for a follow-up is ranked by its carried words' evidence.
    assert switch["passage@3"] >= full["passage@3"] - 0.09


# ---------- /api/ask with history, over the real server ----------

ZHENJIANG = "zhenjiang-subdistrict-npc-work"


def test_ask_with_history_answers_the_followup(client):
    first = client.post("/api/ask", json={"question": "镇江市除31个镇外共有多少个街道？"}).json()
    history = [{"role": "user", "content": first["question"]}, {"role": "assistant", "content": first["answer"]}]
    body = client.post("/api/ask", json={"question": "润州区呢？", "history": history}).json()
    assert body["answerable"] and "润州8个" in body["answer"]
    assert body["citations"][0]["doc_id"] == ZHENJIANG
    assert body["resolved_question"].startswith("润州区呢？") and "镇江市" in body["resolved_question"]
    alone = client.post("/api/ask", json={"question": "润州区呢？"}).json()
    assert alone["resolved_question"] is None


def test_this_document_stays_in_the_previous_document(client):
    history = [{"role": "user", "content": "镇江市街道（园区）人大工委主任中任职时间最长的有多少年？"}]
    body = client.post("/api/ask", json={"question": "这篇文章的作者是谁？", "history": history}).json()
    assert "王丰江" in body["answer"] and {c["doc_id"] for c in body["citations"]} == {ZHENJIANG}


def test_streamed_ask_with_history(client):
    history = [{"role": "user", "content": "省里规定街道必须设置几个机构？"}]
    response = client.post("/api/ask", json={"question": "具体有哪些？", "history": history, "stream": True})
    done = [line for line in response.text.splitlines() if line.startswith("data:")][-1]
    payload = json.loads(done.removeprefix("data: "))
    assert "退役军人服务站" in payload["answer"] and payload["resolved_question"].startswith("具体有哪些？")


@pytest.mark.parametrize(
    "history",
    [
        [{"role": "tool", "content": "x"}],
        [{"role": "user"}],
        [{"role": "user", "content": "x" * 8001}],
        [{"role": "user", "content": "x", "extra": 1}],
        [{"role": "user", "content": "问"}] * 41,
        "not a list",
    ],
    ids=["role", "no-content", "too-long", "unknown-field", "too-many", "not-a-list"],
)
def test_bad_history_is_a_422(client, history):
    response = client.post("/api/ask", json={"question": "具体有哪些？", "history": history})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_followup_waits_for_a_compute_slot_like_any_question(engine):
    """Follow-ups (and so every /v1 request) once searched beside the slots, unbounded; now they take one."""
    slots = engine.threads.compute_slots
    for _ in range(slots):
        engine._slots.acquire()
    answered = threading.Event()
    history = [Turn("user", "镇江市共有多少个街道？"), Turn("assistant", "镇江市共有多少个街道")]

    def ask():
        engine.ask("那京口区呢？", history=history, top_k=3, mode="hybrid", doc_ids=None)
        answered.set()

    worker = threading.Thread(target=ask)
    worker.start()
    try:
        assert not answered.wait(0.5)  # every slot is taken: the follow-up waits
    finally:
        for _ in range(slots):
            engine._slots.release()
    worker.join(60)
    assert answered.is_set()
