# ruff: noqa: F811 (the fixtures of test_console.py, imported to be used, are redefined as parameters)
"""The console's staff views in a real Chromium on a real server: keys (made, shown once, copied, last use,
revoked), the audit trail (per knowledge base and all, paged, exported), the term dictionary, chunk corrections,
FAQ pairs, the feedback queue. Every page is watched for console errors and CSP violations; each view is shot at
desktop and 375 px."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.test_console import (  # noqa: F401 (fixtures)
    AUTH,
    SHOTS,
    api,
    browser,
    console_server,
    page,
    phone,
    shot,
    signed_in,
)
from tests.test_widget import CHROMIUM, expect

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
DOC = "haian-central-town-reform"
ANSWER_TIMEOUT_MS = 60_000
WIDE = (
    "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1 &&"
    " true).map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)"
)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_fits(phone) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375, phone.evaluate(WIDE)


def listed_key(api, key_id: str) -> dict | None:
    return next((k for k in api.get("/api/keys", headers=AUTH).json()["data"] if k["key_id"] == key_id), None)


def test_a_key_is_made_shown_once_copied_used_and_revoked(page, api, console_server, tmp_path):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    signed_in(page, console_server)
    page.get_by_role("button", name="密钥", exact=True).click()
    form = page.locator("#key-create")
    form.get_by_label("标签").fill("门户网站问答")
    form.get_by_label("权限").select_option("write")
    expect(form.get_by_label("Default（default）")).to_be_checked()  # the knowledge base in view, ticked
    form.get_by_role("button", name="创建密钥").click()
    made = page.locator("#key-made")
    expect(made).to_be_visible()
    expect(made).to_contain_text("只显示这一次")
    key = page.locator("#key-made-value").input_value()
    assert key.startswith("pqa_")
    made.get_by_role("button", name="复制").click()
    expect(page.locator("#key-copied")).to_have_text("已复制到剪贴板。")
    assert page.evaluate("navigator.clipboard.readText()") == key
    row = page.locator("#key-table tbody tr", has_text="门户网站问答")
    expect(row.locator("td[data-label=权限]")).to_have_text("读写")
    expect(row.locator("td[data-label=最近使用]")).to_have_text("从未使用")
    shot(page, tmp_path, "console-desktop-keys-made.png")

    key_id = row.get_attribute("data-key-id")
    assert listed_key(api, key_id)["last_used_at"] is None
    assert api.get("/api/documents", headers=bearer(key)).status_code == 200
    first_use = listed_key(api, key_id)["last_used_at"]
    assert first_use is not None
    time.sleep(1.1)
    assert api.get("/api/documents", headers=bearer(key)).status_code == 200
    assert listed_key(api, key_id)["last_used_at"] == first_use  # a busy key writes its use once a minute

    made.get_by_role("button", name="我已保存，关闭").click()
    expect(made).to_be_hidden()
    assert page.locator("#key-made-value").input_value() == ""  # the key leaves the page
    page.get_by_role("button", name="密钥", exact=True).click()
    expect(row.locator("td[data-label=最近使用]")).not_to_have_text("从未使用")
    row.get_by_role("button", name="撤销密钥").click()
    dialog = page.get_by_role("dialog", name="请确认")
    expect(dialog).to_contain_text("门户网站问答")
    dialog.get_by_role("button", name="确认撤销").click()
    expect(row).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text("已撤销密钥")
    assert api.get("/api/caller", headers=bearer(key)).status_code == 401  # a revoked key matches nothing
    assert listed_key(api, key_id) is None


def test_a_key_is_made_with_the_keyboard_only(page, api, console_server):
    signed_in(page, console_server)
    page.get_by_role("button", name="密钥", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#keys-title")).to_be_focused()
    page.locator("#key-label").focus()
    page.keyboard.type("键盘创建")
    page.keyboard.press("Tab")  # 权限
    page.keyboard.press("Tab")  # the first knowledge base, ticked
    page.keyboard.press("Tab")  # 创建密钥
    expect(page.get_by_role("button", name="创建密钥")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#key-made-value")).to_be_focused()
    key = page.locator("#key-made-value").input_value()
    assert api.get("/api/documents", headers=bearer(key)).status_code == 200


def test_the_audit_trail_pages_newest_first_switches_scope_and_exports(page, api, console_server, tmp_path):
    made = api.post("/api/keys", headers=AUTH, json={"kbs": ["default"], "scope": "write", "label": "编辑甲"}).json()
    for kind in ["通知", "意见"] * 26:  # 52 changes: more than a page
        response = api.patch(f"/api/documents/{DOC}/metadata", headers=bearer(made["key"]), json={"kind": kind})
        assert response.status_code == 200, response.text
    signed_in(page, console_server)
    page.get_by_role("button", name="操作记录").click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(50)
    newest = rows.first
    expect(newest.locator("td[data-label=操作]")).to_contain_text("修改文件信息")
    expect(newest.locator("td[data-label=操作者]")).to_have_text(f"key {made['key_id']} (编辑甲)")
    expect(newest.locator("td[data-label=来源地址]")).to_have_text("127.0.0.1")
    expect(newest.locator("td[data-label=详情]")).to_contain_text(f"doc_id: {DOC}")
    page.get_by_role("button", name="加载更早的记录").click()
    expect(rows).to_have_count(52)
    expect(page.get_by_role("button", name="加载更早的记录")).to_be_hidden()
    shot(page, tmp_path, "console-desktop-audit.png")

    page.get_by_label("范围").select_option("all")
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="加载更早的记录").click()  # the keys made before the 52 changes
    expect(rows.filter(has_text="创建密钥").first).to_contain_text("（全局）")
    with page.expect_download() as download:
        page.get_by_role("button", name="导出（JSON Lines）").click()
    assert download.value.suggested_filename == "audit.jsonl"
    lines = [json.loads(line) for line in download.value.path().read_text(encoding="utf-8").splitlines()]
    assert len(lines) >= 53 and lines[0]["at"] >= lines[-1]["at"]  # newest first, keys included
    assert any(line["action"] == "POST /api/keys" for line in lines)
    expect(page.locator("#notice")).to_contain_text(f"已导出 {len(lines)} 条操作记录")


def test_terms_are_added_listed_with_who_and_when_refused_and_deleted(page, api, console_server, tmp_path):
    signed_in(page, console_server)
    page.get_by_role("button", name="词典").click()
    form = page.locator("#term-create")
    form.get_by_label("标准词").fill("机构编制委员会办公室")
    form.get_by_label("类型").select_option("abbreviation")
    form.get_by_label("其他写法（用、或换行分隔）").fill("编办、编委办公室")
    form.get_by_role("button", name="添加").click()
    row = page.locator("#term-table tbody tr", has_text="机构编制委员会办公室")
    expect(row.locator("td[data-label=其他写法]")).to_have_text("编办、编委办公室")
    expect(row.locator("td[data-label=类型]")).to_have_text("简称")
    expect(row.locator("td[data-label=添加]")).to_contain_text("（admin）")
    assert [t["canonical"] for t in api.get("/api/terms", headers=AUTH).json()["data"]] == ["机构编制委员会办公室"]

    form.get_by_label("标准词").fill("编委会办公室")
    form.get_by_label("其他写法（用、或换行分隔）").fill("编办")  # 编办 is taken: a 409 naming the entry
    form.get_by_role("button", name="添加").click()
    expect(page.locator("#notice")).to_contain_text("添加失败：与现有内容冲突")
    expect(page.locator("#term-table tbody tr")).to_have_count(1)
    page.problems[:] = [p for p in page.problems if "status of 409" not in p]  # the refusal, as Chromium logs it

    form.get_by_label("标准词").fill("综合行政执法大队")
    form.get_by_label("类型").select_option("protected")
    expect(form.get_by_label("其他写法（用、或换行分隔）")).to_be_disabled()
    form.get_by_role("button", name="添加").click()
    expect(page.locator("#term-reindex")).to_be_visible()  # documents still hold it cut as jieba cut it
    expect(page.locator("#term-reindex")).to_contain_text("需要重新切分文档")
    page.get_by_label("同时显示内置词表（只读）").check()
    expect(page.locator("#term-base-table tbody tr").first).to_be_visible()
    shot(page, tmp_path, "console-desktop-terms.png")
    page.locator("#term-table tbody tr", has_text="综合行政执法大队").get_by_role("button", name="删除词条").click()
    page.get_by_role("dialog", name="请确认").get_by_role("button", name="确认删除").click()
    expect(page.locator("#term-table tbody tr")).to_have_count(1)
    expect(page.locator("#term-reindex")).to_be_hidden()


def test_a_chunk_is_corrected_shown_as_a_diff_and_rolled_back(page, api, console_server, tmp_path):
    doc_id = "kaifeng-township-subdistrict-reform"
    signed_in(page, console_server)
    page.locator(f"#doc-table tbody tr[data-doc-id='{doc_id}']").get_by_role("button", name="查看").click()
    chunk = page.locator(".chunk").first
    original = chunk.locator(".chunk-text").inner_text()
    chunk.get_by_role("button", name="更正片段 1").click()
    editor = chunk.get_by_role("textbox", name="片段 1 的新文字")
    expect(editor).to_be_focused()
    editor.fill(original + "（经核对原件更正）")
    chunk.get_by_role("textbox", name="更正原因（可选）").fill("补全文字")
    chunk.get_by_role("button", name="保存更正").click()
    expect(page.locator("#notice")).to_contain_text("已更正片段 1（第 1 版）", timeout=ANSWER_TIMEOUT_MS)
    chunk = page.locator(".chunk").first  # drawn again: the chunk has a new id
    expect(chunk.locator(".chunk-text")).to_contain_text("（经核对原件更正）")
    expect(chunk.locator(".badge")).to_have_text("已更正")
    expect(chunk.locator(".chunk-panel .diff ins").first).to_have_text("（经核对原件更正）")
    expect(chunk.locator(".version").first).to_contain_text("第 1 版 · 更正 · admin")
    expect(chunk.locator(".version").first).to_contain_text("补全文字")
    expect(page.locator("#doc-meta")).to_contain_text("其中 1 个片段经人工更正")
    chunks = api.get(f"/api/documents/{doc_id}/chunks").json()["data"]
    assert chunks[0]["corrected"] and chunks[0]["text"].endswith("（经核对原件更正）")
    shot(page, tmp_path, "console-desktop-correction.png")

    chunk.get_by_role("button", name="回滚到原文").click()
    page.get_by_role("dialog", name="请确认").get_by_role("button", name="确认回滚").click()
    expect(page.locator("#notice")).to_contain_text("已把片段 1 恢复为原文（第 2 版）", timeout=ANSWER_TIMEOUT_MS)
    chunk = page.locator(".chunk").first
    expect(chunk.locator(".chunk-text")).to_have_text(original)
    expect(chunk.locator(".version")).to_have_count(2)
    assert not api.get(f"/api/documents/{doc_id}/chunks").json()["data"][0]["corrected"]
    page.get_by_role("button", name="← 返回文档列表").click()
    expect(page.locator(f"#doc-table tbody tr[data-doc-id='{doc_id}'] .badge")).to_have_count(0)


FAQ_CSV = (
    "问题,答案,相似问法,来源\n"
    "乡镇便民服务中心周末开门吗？,乡镇便民服务中心周六上午正常办公，周日休息。,便民服务中心星期六上班吗,县政务服务管理办公室\n"
    "乡镇应急物资多久检查一次？,乡镇应急物资每季度检查一次并登记。,,县应急管理局\n"
)
BAD_CSV = "问题,答案\n街道综合执法队有几名队员？,八名。\n街道党工委书记由谁担任？,\n"


def test_faq_pairs_are_imported_refused_by_line_edited_exported_and_deleted(page, api, console_server, tmp_path):
    signed_in(page, console_server)
    page.get_by_role("button", name="问答对").click()
    page.locator("#faq-file").set_input_files({"name": "bad.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode()})
    page.locator("#faq-import").get_by_role("button", name="导入").click()
    expect(page.locator("#faq-import-problems li").first).to_contain_text("第 3 行")
    expect(page.locator("#notice")).to_contain_text("整个文件都没有导入")
    page.problems[:] = [p for p in page.problems if "status of 422" not in p]  # the refusal, as Chromium logs it
    page.locator("#faq-file").set_input_files({"name": "faq.csv", "mimeType": "text/csv", "buffer": FAQ_CSV.encode()})
    page.locator("#faq-import").get_by_role("button", name="导入").click()
    expect(page.locator("#notice")).to_contain_text("已导入 2 对问答", timeout=ANSWER_TIMEOUT_MS)
    row = page.locator("#faq-table tbody tr", has_text="周末开门")
    expect(row.locator("td[data-label=相似问法]")).to_have_text("便民服务中心星期六上班吗")
    expect(row.locator("td[data-label=来源]")).to_have_text("县政务服务管理办公室")

    row.get_by_role("button", name="编辑问答对").click()
    expect(page.get_by_label("问题", exact=True)).to_be_focused()
    page.get_by_label("答案（原文引用，请核对）").fill("乡镇便民服务中心周六全天办公，周日休息。")
    page.get_by_role("button", name="保存修改").click()
    expect(page.locator("#notice")).to_contain_text("已保存问答对", timeout=ANSWER_TIMEOUT_MS)
    expect(row.locator("td[data-label=答案]")).to_have_text("乡镇便民服务中心周六全天办公，周日休息。")
    asked = api.post("/api/ask", json={"question": "便民服务中心星期六上班吗"}).json()
    assert asked["faq"] is not None and "周六全天办公" in asked["answer"]
    page.get_by_label("搜索").fill("应急物资")
    expect(page.locator("#faq-table tbody tr")).to_have_count(1)
    page.get_by_label("搜索").fill("")
    shot(page, tmp_path, "console-desktop-faq.png")

    with page.expect_download() as download:
        page.get_by_role("button", name="Excel（.xlsx）").click()
    assert download.value.suggested_filename == "faq-default.xlsx"
    assert download.value.path().read_bytes()[:2] == b"PK"  # a zip: the workbook
    row.get_by_role("button", name="删除问答对").click()
    page.get_by_role("dialog", name="请确认").get_by_role("button", name="确认删除").click()
    expect(row).to_have_count(0)
    assert api.get("/api/faq").json()["count"] == 1


def give_feedback(api, question: str, verdict: str) -> None:
    """A reader's verdict on the answer /api/ask gave, with its citations as the widget sends them."""
    asked = api.post("/api/ask", json={"question": question}).json()
    hit = api.post("/api/search", json={"query": question, "top_k": 1}).json()["results"][0]
    quote = hit["text"][hit["evidence"]["start"] : hit["evidence"]["end"]] if hit["evidence"] else hit["text"][:80]
    body = {
        "question": question,
        "answer": {"text": asked["answer"], "answerable": asked["answerable"]},
        "citations": [
            {"n": 1, "doc_id": hit["doc_id"], "title": hit["title"], "quote": quote, "chunk_id": hit["chunk_id"]}
        ],
        "verdict": verdict,
        "comment": "数字不对",
    }
    response = api.post("/api/feedback", json=body)
    assert response.status_code == 201, response.text


def test_feedback_is_reviewed_marked_and_added_to_the_gold_set(page, api, console_server, tmp_path):
    give_feedback(api, "海安县首批下放了多少项行政权力事项？", "wrong")
    give_feedback(api, "乡镇食堂的菜价是多少？", "should_have_declined")
    signed_in(page, console_server)
    page.get_by_role("button", name="反馈").click()
    items = page.locator("#feedback-list .feedback")
    expect(items).to_have_count(2)
    newest, older = items.nth(0), items.nth(1)
    expect(newest).to_contain_text("乡镇食堂的菜价是多少？")  # newest first
    expect(older.locator(".verdict-tag")).to_have_text("回答错误")
    expect(older.locator(".answer-as-given")).to_contain_text("当时的回答")
    expect(older).to_contain_text("读者说明：数字不对")
    older.get_by_role("button", name="标为正确片段").click()
    expect(older.locator(".marked")).to_contain_text("已标出答案所在片段")
    older.get_by_role("button", name="加入标准问题集").click()
    expect(page.locator("#notice")).to_contain_text("加入本知识库的标准问题集")
    expect(older.locator(".feedback-status")).to_have_text("已加入标准问题集")
    gold = api.get("/api/gold", headers=AUTH).json()["data"]
    assert [g["question"] for g in gold] == ["海安县首批下放了多少项行政权力事项？"]
    newest.get_by_role("button", name="文档中没有答案").click()
    expect(newest.locator(".marked")).to_contain_text("已标为：文档中没有答案（admin")
    shot(page, tmp_path, "console-desktop-feedback.png")
    page.locator("#feedback-status").select_option("open")
    expect(items).to_have_count(0)


def test_the_staff_views_at_375_px(phone, console_server, tmp_path):
    signed_in(phone, console_server)
    phone.get_by_role("button", name="密钥", exact=True).click()
    expect(phone.locator("#key-table tbody tr").first).to_be_visible()
    phone.locator("#key-label").fill("手机")
    phone.get_by_role("button", name="创建密钥").click()
    expect(phone.locator("#key-made")).to_be_visible()
    assert_fits(phone)
    shot(phone, tmp_path, "console-phone-keys.png")
    phone.get_by_role("button", name="操作记录").click()
    expect(phone.locator("#audit-table tbody tr").first).to_be_visible()
    shot(phone, tmp_path, "console-phone-audit.png")
    assert_fits(phone)
    phone.get_by_role("button", name="词典").click()
    expect(phone.locator("#term-create")).to_be_visible()
    assert_fits(phone)
    shot(phone, tmp_path, "console-phone-terms.png")
    phone.get_by_role("button", name="反馈").click()
    phone.locator("#feedback-status").select_option("")
    expect(phone.locator("#feedback-list .feedback").first).to_be_visible()
    assert_fits(phone)
    shot(phone, tmp_path, "console-phone-feedback.png")
    phone.get_by_role("button", name="问答对").click()
    expect(phone.locator("#faq-form")).to_be_visible()
    assert_fits(phone)
    shot(phone, tmp_path, "console-phone-faq.png")
    phone.get_by_role("button", name="文档", exact=True).click()
    phone.locator("#doc-table tbody tr[data-doc-id='kaifeng-township-subdistrict-reform']").get_by_role(
        "button", name="查看"
    ).click()
    phone.get_by_role("button", name="片段 1 的更正记录").click()
    expect(phone.locator(".chunk").first.locator(".chunk-panel")).to_be_visible()
    phone.get_by_role("button", name="更正片段 2").click()
    expect(phone.get_by_role("textbox", name="片段 2 的新文字")).to_be_focused()
    assert_fits(phone)
    phone.locator(".chunk").nth(1).screenshot(path=str(tmp_path / "console-phone-correction.png"))
    shutil.copy(tmp_path / "console-phone-correction.png", SHOTS / "console-phone-correction.png")
