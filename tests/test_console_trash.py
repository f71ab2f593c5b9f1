# ruff: noqa: F811 (the fixtures of test_console.py, imported to be used, are redefined as parameters)
"""The console's trash in a real Chromium on a real server with a 24-hour window: a delete from the documents
table undone from the notice with the keyboard, the 回收站 view listing what is kept with the time left, 恢复
and 永久删除 (confirmed); at desktop size and 375 px, watched for console errors and CSP violations."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.test_console import AUTH, TOKEN, browser, page, phone, signed_in  # noqa: F401 (fixtures)
from tests.test_console_staff import assert_fits
from tests.test_widget import ARTIFACTS, CHROMIUM, expect

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
RESTORE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def trash_server(seed_data_dir, tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("console-trash-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN,
           "POLICYQA_TRASH_RETENTION_HOURS": "24"}  # fmt: skip
    process, url = start_server(env)
    yield url
    output = stop_server(process)
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def api(trash_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=trash_server, timeout=120.0) as client:
        yield client


def shot(page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)
    return ARTIFACTS / name


def document(api: httpx.Client, doc_id: str) -> dict:
    response = api.get(f"/api/documents/{doc_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_delete_is_undone_from_the_notice_and_the_trash_restores_and_purges(page, api, trash_server):
    doc_id = "haian-central-town-reform"
    before = document(api, doc_id)
    signed_in(page, trash_server)
    row = page.locator(f"#doc-table tbody tr[data-doc-id='{doc_id}']")
    row.get_by_role("button", name=f"删除 {before['title']}").click()
    dialog = page.get_by_role("dialog", name="请确认")
    expect(dialog).to_contain_text("在回收站保留 24 小时，期间可以撤销")
    dialog.get_by_role("button", name="确认删除").click()
    expect(row).to_have_count(0)
    undo = page.locator("#notice").get_by_role("button", name="撤销")
    expect(undo).to_be_focused()  # the next key press may undo it
    expect(page.locator("#notice")).to_contain_text(f"已删除《{before['title']}》。回收站保留到")
    shot(page, "console-desktop-trash-undo.png")
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_contain_text(f"已恢复《{before['title']}》", timeout=RESTORE_TIMEOUT_MS)
    expect(row.get_by_role("button", name="查看")).to_be_focused()
    after = document(api, doc_id)
    assert after["text"] == before["text"] and after["added_at"] == before["added_at"]

    row.get_by_role("button", name=f"删除 {before['title']}").click()
    page.get_by_role("dialog", name="请确认").get_by_role("button", name="确认删除").click()
    expect(row).to_have_count(0)
    other = document(api, "kaifeng-township-subdistrict-reform")
    assert api.delete("/api/documents/kaifeng-township-subdistrict-reform", headers=AUTH).status_code == 200
    page.get_by_role("button", name="回收站").click()
    expect(page.locator("#trash-title")).to_be_focused()
    expect(page.locator("#trash-window")).to_contain_text("保留 24 小时")
    entries = page.locator("#trash-table tbody tr")
    expect(entries).to_have_count(2)
    expect(entries.first.locator("td[data-label=标题]")).to_have_text(other["title"])  # newest first
    kept = entries.filter(has_text=before["title"])
    expect(kept.locator("td[data-label=剩余时间]")).to_have_text(re.compile(r"^23 小时 5\d 分$"))
    expect(kept.locator("td[data-label=删除者]")).to_have_text("admin")
    shot(page, "console-desktop-trash.png")

    page.keyboard.press("Tab")  # from the heading to the newest entry's 恢复
    expect(entries.first.get_by_role("button", name=f"恢复 {other['title']}")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past its 永久删除, to the older entry's 恢复
    expect(kept.get_by_role("button", name=f"恢复 {before['title']}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_contain_text(f"已恢复《{before['title']}》", timeout=RESTORE_TIMEOUT_MS)
    expect(entries).to_have_count(1)
    assert document(api, doc_id)["added_at"] == before["added_at"]

    entries.first.get_by_role("button", name=f"永久删除 {other['title']}").click()
    confirm = page.get_by_role("dialog", name="请确认")
    expect(confirm).to_contain_text("之后无法恢复")
    confirm.get_by_role("button", name="确认永久删除").click()
    expect(page.locator("#notice")).to_contain_text(f"已永久删除《{other['title']}》")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("回收站是空的。")
    assert api.get("/api/trash", headers=AUTH).json()["count"] == 0


def test_the_trash_and_the_undo_at_375_px(phone, api, trash_server):
    gone = document(api, "luotuo-subdistrict-operating-mechanism-2019")
    assert api.delete(f"/api/documents/{gone['doc_id']}", headers=AUTH).status_code == 200
    signed_in(phone, trash_server)
    phone.get_by_role("button", name="回收站").click()
    expect(phone.locator("#trash-table tbody tr", has_text=gone["title"])).to_be_visible()
    assert_fits(phone)
    shot(phone, "console-phone-trash.png")

    phone.get_by_role("button", name="文档", exact=True).click()
    doc = document(api, "zhenjiang-subdistrict-npc-work")
    row = phone.locator(f"#doc-table tbody tr[data-doc-id='{doc['doc_id']}']")
    row.get_by_role("button", name=f"删除 {doc['title']}").click()
    phone.get_by_role("dialog", name="请确认").get_by_role("button", name="确认删除").click()
    undo = phone.locator("#notice").get_by_role("button", name="撤销")
    expect(undo).to_be_visible()
    assert_fits(phone)
    shot(phone, "console-phone-trash-undo.png", full_page=False)  # the notice, at the top of a long table
    undo.tap()
    expect(phone.locator("#notice")).to_contain_text(f"已恢复《{doc['title']}》", timeout=RESTORE_TIMEOUT_MS)
    expect(row).to_have_count(1)
