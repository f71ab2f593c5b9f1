"""FAQ pairs through the real server: imported from .csv and .xlsx, answering their questions and 相似问法
verbatim as FAQ, replaced, exported, deleted; a bad file refused with its row named, nothing imported."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from tests.conftest import serve_seed_copy, stop_server

TOKEN = "faq-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PAIRS_CSV = Path(__file__).parent / "data" / "faq" / "pairs.csv"
HOURS = "工作日上午9:00至12:00，下午13:30至17:30，法定节假日除外。"
FEE = "2024年度城乡居民基本医疗保险个人缴费标准为每人每年400元。"
PERMIT = ("居住证怎么办理？", "本人居民身份证、近期免冠照片，以及合法稳定住所证明。", "申领居住证要带什么？")


@pytest.fixture(scope="module")
def http(seed_data_dir, tmp_path_factory):
    process, base_url = serve_seed_copy(
        seed_data_dir, tmp_path_factory.mktemp("faq-data"), {"POLICYQA_ADMIN_TOKEN": TOKEN}
    )
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        yield client
    assert "Traceback" not in stop_server(process)


def finished(http: httpx.Client, response: httpx.Response) -> dict:
    assert response.status_code == 202, response.text
    job = response.json()["job"]
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = http.get(f"/api/jobs/{job['id']}", headers=ADMIN).json()
    assert job["state"] == "done", job
    return response.json()


def ask(http: httpx.Client, question: str) -> dict:
    response = http.post("/api/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def xlsx(rows: list[list[str]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def imported(http) -> dict:
    files = {"file": ("pairs.csv", PAIRS_CSV.read_bytes(), "text/csv")}
    from_csv = finished(http, http.post("/api/faq/import", headers=ADMIN, files=files))
    book = xlsx([["问题", "答案", "相似问法"], list(PERMIT)])
    files = {"file": ("permit.xlsx", book, "application/octet-stream")}
    from_xlsx = finished(http, http.post("/api/faq/import", headers=ADMIN, files=files))
    return {"csv": from_csv["ids"], "xlsx": from_xlsx["ids"]}


def test_an_imported_pair_answers_its_question_and_its_similar_questions_verbatim_as_faq(http, imported):
    assert len(imported["csv"]) == 2 and len(imported["xlsx"]) == 1
    for question in ("街道便民服务中心的办公时间是什么？", "便民服务中心几点上班？"):
        body = ask(http, question)
        assert body["answerable"] and body["answer"] == f"{HOURS}[1]", body["answer"]
        lead = body["citations"][0]
        assert lead["kind"] == "faq" and lead["faq"]["source"] == "《街道便民服务指南》第二条", lead
        assert lead["text"][lead["highlights"][0]["start"] : lead["highlights"][0]["end"]] == HOURS
        assert body["faq"]["id"] == imported["csv"][0] and body["faq"]["score"] >= body["faq"]["threshold"]
    permit = ask(http, PERMIT[2])
    assert permit["answer"] == f"{PERMIT[1]}[1]" and permit["citations"][0]["faq"]["id"] == imported["xlsx"][0]


def test_a_question_of_the_documents_still_answers_from_them(http, imported):
    body = ask(http, "镇海区6个镇（街道）人员分流后，一共精简了多少名机关各类工作人员？")
    assert body["faq"] is None and "50" in body["answer"]
    assert body["citations"][0]["kind"] == "document"


def test_pairs_are_listed_searched_and_refused_when_asked_twice(http, imported):
    listed = http.get("/api/faq", params={"limit": 2}).json()
    assert listed["count"] == 3 and [p["id"] for p in listed["data"]] == imported["csv"]
    search = http.post("/api/search", json={"query": "居民医保个人缴费标准"}).json()
    assert any(r["kind"] == "faq" and r["faq"]["question"] == "城乡居民医保每年缴多少钱？" for r in search["results"])
    again = http.post("/api/faq", headers=ADMIN, json={"question": "便民服务中心几点上班？", "answer": "九点。"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_a_bad_file_is_refused_with_its_row_named_and_nothing_imported(http, imported):
    bad = "问题,答案\n居住证丢了怎么补办？,到派出所补办。\n只有问题没有答案,\n".encode()
    response = http.post("/api/faq/import", headers=ADMIN, files={"file": ("bad.csv", bad, "text/csv")})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "row 3" in error["message"] and error["details"][0]["row"] == 3 and error["details"][0]["line"] == 3
    no_header = http.post("/api/faq/import", headers=ADMIN, files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")})
    assert no_header.status_code == 422 and no_header.json()["error"]["details"][0]["row"] == 1
    assert http.get("/api/faq").json()["count"] == 3
    reader = http.post("/api/faq/import", files={"file": ("pairs.csv", PAIRS_CSV.read_bytes(), "text/csv")})
    assert reader.status_code in (401, 403)


def test_export_reads_back_as_the_pairs(http, imported):
    pairs = {p["id"]: p for p in http.get("/api/faq", params={"limit": 500}).json()["data"]}
    text = http.get("/api/faq/export", params={"format": "csv"}).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {
        r["编号"]: (r["问题"], r["答案"], r["相似问法"].split("\n") if r["相似问法"] else [], r["来源"]) for r in rows
    } == {i: (p["question"], p["answer"], p["similar"], p["source"]) for i, p in pairs.items()}
    sheet = load_workbook(io.BytesIO(http.get("/api/faq/export", params={"format": "xlsx"}).content)).active
    assert [c.value for c in sheet[1]][:4] == ["问题", "答案", "相似问法", "来源"] and sheet.max_row == 4
    lines = http.get("/api/faq/export", params={"format": "jsonl"}).text.splitlines()
    assert len(lines) == 3 and http.get("/api/faq/export", params={"format": "pdf"}).status_code == 422


def test_replace_changes_the_answer_and_delete_removes_it(http, imported):
    faq_id = imported["csv"][1]
    new = "2025年度城乡居民基本医疗保险个人缴费标准为每人每年380元。"
    body = {"question": "城乡居民医保每年缴多少钱？", "answer": new, "similar": ["居民医保个人缴费标准是多少？"]}
    finished(http, http.put(f"/api/faq/{faq_id}", headers=ADMIN, json=body))
    assert http.get(f"/api/faq/{faq_id}").json()["answer"] == new
    assert ask(http, "居民医保个人缴费标准是多少？")["answer"] == f"{new}[1]"
    deleted = http.delete(f"/api/faq/{faq_id}", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json()["deleted"], deleted.text
    after = ask(http, "居民医保个人缴费标准是多少？")
    assert after["faq"] is None and all(c.get("faq") is None or c["faq"]["id"] != faq_id for c in after["citations"])
    assert http.get(f"/api/faq/{faq_id}").status_code == 404
