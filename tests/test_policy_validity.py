"""Issuer, 文号, dates and validity through the real server: a repealed notice and the one that repealed it,
filters on every read path, and a staff correction that takes effect with no rebuild."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import start_server, stop_server

TOKEN = "policy-admin-token-5"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
KB = "policy"

OLD = (
    "河南省机构编制委员会办公室\n"
    "豫编办〔2019〕12号\n"
    "河南省乡镇综合行政执法大队编制管理办法\n"
    "第一条 为规范乡镇综合行政执法大队的机构编制管理，制定本办法。\n"
    "第二条 每个乡镇综合行政执法大队核定行政执法专项编制15名，由县级机构编制部门统一管理。\n"
    "第三条 执法大队实行县乡双重管理，以乡镇管理为主。\n"
    "第四条 本办法自2019年6月1日起施行。\n"
    "河南省机构编制委员会办公室\n"
    "2019年5月20日\n"
)
NEW = (
    "河南省机构编制委员会办公室\n"
    "豫编办〔2023〕8号\n"
    "河南省乡镇综合行政执法队伍编制管理规定\n"
    "第一条 为深化基层综合行政执法改革，规范乡镇综合行政执法大队的编制管理，制定本规定。\n"
    "第二条 每个乡镇综合行政执法大队核定行政执法专项编制20名，人口超过十万的乡镇可增加5名。\n"
    "第三条 执法人员须取得行政执法证件后方可从事执法活动。\n"
    "第四条 本规定自2023年5月1日起施行，《河南省乡镇综合行政执法大队编制管理办法》（豫编办〔2019〕12号）同时废止。\n"
    "河南省机构编制委员会办公室\n"
    "2023年4月10日\n"
)
QUESTION = "乡镇综合行政执法大队核定多少名行政执法专项编制？"
PAST_QUESTION = "2019年的规定中，乡镇综合行政执法大队核定多少名行政执法专项编制？"


@pytest.fixture(scope="module")
def policy_server(seed_data_dir, tmp_path_factory):
    import shutil

    data_dir = tmp_path_factory.mktemp("policy-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    process, base_url = start_server(
        {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN}
    )
    with httpx.Client(base_url=base_url, timeout=120.0) as client:
        made = client.post("/api/kbs", headers=ADMIN, json={"kb_id": KB, "title": "政策", "public": True})
        assert made.status_code == 201, made.text
        for name, text in (("old-2019.txt", OLD), ("new-2023.txt", NEW)):
            _upload(client, name, text, title=text.splitlines()[2])
        yield client
    output = stop_server(process)
    assert "Traceback" not in output, output


def _upload(client: httpx.Client, name: str, text: str, title: str) -> None:
    files = {"files": (name, text.encode())}
    response = client.post(f"/api/kbs/{KB}/documents", headers=ADMIN, files=files, data={"title": title})
    assert response.status_code == 202, response.text
    job = response.json()["jobs"][0]
    assert job["metadata"]["doc_number"]["value"] == text.splitlines()[1]  # the reply shows what was found
    job_id = job["id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = client.get(f"/api/kbs/{KB}/jobs/{job_id}", headers=ADMIN).json()
        if job["state"] in ("done", "failed"):
            assert job["state"] == "done", job
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} was not indexed")


def _ask(client: httpx.Client, question: str, **options) -> dict:
    response = client.post(f"/api/kbs/{KB}/ask", json={"question": question, **options})
    assert response.status_code == 200, response.text
    return response.json()


def _assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]["message"]


def test_documents_carry_issuer_number_dates_and_the_repeal_linked(policy_server):
    listed = {d["doc_id"]: d["policy"] for d in policy_server.get(f"/api/kbs/{KB}/documents").json()["data"]}
    old, new = listed["old-2019"], listed["new-2023"]
    assert old["doc_number"] == "豫编办〔2019〕12号" and new["doc_number"] == "豫编办〔2023〕8号"
    assert "河南省机构编制委员会办公室" in old["issuers"] and old["level"] == "省"
    assert old["written_date"] == "2019-05-20" and new["effective_date"] == "2023-05-01"
    assert old["validity"]["status"] == "repealed" and old["validity"]["by_doc_id"] == "new-2023"
    assert old["validity"]["since"] == "2023-05-01" and "废止" in old["validity"]["note"]
    assert new["validity"]["status"] == "current" and new["validity"]["note"] is None
    assert old["provenance"]["doc_number"]["source"] == "text" and old["provenance"]["doc_number"]["span"]


def test_the_current_document_answers_and_the_repealed_one_is_flagged(policy_server):
    body = _ask(policy_server, QUESTION)
    assert body["answerable"], body
    first = body["citations"][0]
    assert first["doc_id"] == "new-2023" and "20名" in first["text"]
    assert first["document"]["validity"]["status"] == "current"
    old = [c for c in body["citations"] if c["doc_id"] == "old-2019"]
    assert all(c["document"]["validity"]["status"] == "repealed" for c in old)
    if old:  # cited further down: said once, with every marker, in the notices and the answer
        marks = "".join(f"[{c['n']}]" for c in old)
        expected = (
            f"{marks}《河南省乡镇综合行政执法大队编制管理办法》"
            "该文件已于2023-05-01废止，被《河南省乡镇综合行政执法队伍编制管理规定》取代"
        )
        assert body["notices"] == [expected] and expected in body["answer"]


def test_a_question_about_the_old_period_is_answered_from_the_old_document(policy_server):
    body = _ask(policy_server, PAST_QUESTION)
    assert body["citations"][0]["doc_id"] == "old-2019", [c["doc_id"] for c in body["citations"]]
    assert body["answerable"] and "15名" in body["citations"][0]["text"], body["answer"]
    assert body["notices"] and "废止" in body["answer"]  # the quote never travels without its flag


def test_filters_narrow_every_read_path_and_bad_ones_are_refused(policy_server):
    current_only = {"validity": ["current"]}
    assert {c["doc_id"] for c in _ask(policy_server, QUESTION, filters=current_only)["citations"]} == {"new-2023"}
    before_2021 = {"date_to": "2020-12-31"}
    assert {c["doc_id"] for c in _ask(policy_server, QUESTION, filters=before_2021)["citations"]} == {"old-2019"}
    found = policy_server.post(f"/api/kbs/{KB}/search", json={"query": QUESTION, "filters": {"validity": ["repealed"]}})
    assert {r["doc_id"] for r in found.json()["results"]} == {"old-2019"}
    assert found.json()["results"][0]["document"]["doc_number"] == "豫编办〔2019〕12号"
    nobody = _ask(policy_server, QUESTION, filters={"issuers": ["国务院"]})
    assert not nobody["answerable"] and nobody["citations"] == []
    v1 = policy_server.post(
        "/v1/chat/completions",
        json={"model": KB, "messages": [{"role": "user", "content": QUESTION}], "filters": current_only},
    )
    assert v1.status_code == 200, v1.text
    message = v1.json()["choices"][0]["message"]
    assert {c["doc_id"] for c in message["citations"]} == {"new-2023"} and "豫编办〔2023〕8号" in message["content"]
    _assert_error(policy_server.post(f"/api/kbs/{KB}/ask", json={"question": QUESTION, "filters": {"year": 2019}}), 422)
    inverted = {"date_from": "2023-01-01", "date_to": "2019-01-01"}
    _assert_error(policy_server.post(f"/api/kbs/{KB}/ask", json={"question": QUESTION, "filters": inverted}), 422)
    unknown_level = {"query": QUESTION, "filters": {"levels": ["国"]}}
    _assert_error(policy_server.post(f"/api/kbs/{KB}/search", json=unknown_level), 422)


def test_a_staff_correction_takes_effect_at_once_and_names_who_made_it(policy_server):
    path = f"/api/kbs/{KB}/documents/old-2019/metadata"
    _assert_error(policy_server.patch(path, json={"validity": {"status": "current"}}), 401)
    key = policy_server.post("/api/keys", headers=ADMIN, json={"kbs": [KB], "scope": "write", "label": "编办"}).json()
    staff = {"Authorization": f"Bearer {key['key']}"}
    _assert_error(policy_server.patch(path, headers=staff, json={"validity": {"status": "gone"}}), 422)
    unknown_by = {"validity": {"status": "repealed", "by_doc_id": "x"}}
    _assert_error(policy_server.patch(path, headers=staff, json=unknown_by), 422)
    corrected = policy_server.patch(path, headers=staff, json={"validity": {"status": "current"}, "kind": "办法"})
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert body["policy"]["validity"] == {**body["policy"]["validity"], "status": "current", "source": "staff"}
    assert body["corrections"]["set_by"] == f"key {key['key_id']} (编办)"
    assert body["extracted"]["doc_number"]["value"] == "豫编办〔2019〕12号"  # the text's reading is kept beside
    assert _ask(policy_server, PAST_QUESTION)["notices"] == []  # no rebuild: the next answer already knows
    reset = policy_server.patch(path, headers=staff, json={"reset": ["validity", "kind"]})
    assert reset.json()["policy"]["validity"]["status"] == "repealed" and reset.json()["corrections"] is None
    _assert_error(policy_server.patch(f"/api/kbs/{KB}/documents/nope/metadata", headers=staff, json={}), 404)


def test_the_export_carries_text_metadata_and_corrections(policy_server):
    path = f"/api/kbs/{KB}/documents/new-2023/metadata"
    corrected = policy_server.patch(path, headers=ADMIN, json={"subject_words": ["机构编制", "综合执法"]})
    assert corrected.status_code == 200, corrected.text
    exported = policy_server.get(f"/api/kbs/{KB}/export/documents")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    documents = {line["doc_id"]: line for line in map(json.loads, exported.text.splitlines())}
    listed = {d["doc_id"] for d in policy_server.get(f"/api/kbs/{KB}/documents").json()["data"]}
    assert set(documents) == listed
    old, new = documents["old-2019"], documents["new-2023"]
    assert "核定行政执法专项编制15名" in old["text"] and old["content_hash"]
    assert old["policy"]["validity"]["status"] == "repealed" and old["policy"]["validity"]["by_doc_id"] == "new-2023"
    assert old["extracted"]["doc_number"]["value"] == "豫编办〔2019〕12号" and old["corrections"] is None
    assert new["policy"]["subject_words"] == ["机构编制", "综合执法"] and new["corrections"]["set_by"] == "admin"
    policy_server.patch(path, headers=ADMIN, json={"reset": ["subject_words"]})


def test_the_widget_card_shows_the_number_date_and_the_repeal(policy_server):
    from tests.test_widget import CHROMIUM, ask, expect, launched_browser, new_page, screenshot

    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    base = str(policy_server.base_url).rstrip("/")
    widget = f"<script src='{base}/widget.js' data-kb='{KB}' async></script>"
    html = f"<!doctype html><html lang='zh'><body>{widget}</body></html>"
    with launched_browser() as browser:
        page = new_page(browser)
        page.route(f"{base}/policy-page", lambda route: route.fulfill(body=html, content_type="text/html"))
        page.goto(f"{base}/policy-page")
        page.get_by_role("button", name="打开政策问答").click()
        message = ask(page, PAST_QUESTION)
        first = message.locator("button.cite").first
        first.click()
        card = message.locator(".card").first
        expect(card).to_be_visible()
        expect(card.locator(".card-text")).to_contain_text("15名")
        expect(card.locator(".card-doc")).to_contain_text("河南省机构编制委员会办公室 · 豫编办〔2019〕12号")
        expect(card.locator(".card-doc")).to_contain_text("已废止")
        expect(card.locator(".card-validity")).to_contain_text("该文件已于2023-05-01废止")
        expect(card.locator(".card-validity")).to_have_attribute("role", "note")
        screenshot(page, "widget-repealed-card.png")
        problems = page.problems
        page.context.close()
    assert not problems
