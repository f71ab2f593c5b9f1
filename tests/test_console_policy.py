# ruff: noqa: F811 (the fixtures of test_console.py, imported to be used, are redefined as parameters)
"""The console's documents table and document view with policy metadata, in a real Chromium on a real server:
文号, dates and validity in sortable, filterable columns; a staff correction made with the keyboard only."""

from __future__ import annotations

import time

import pytest

from tests.test_console import (  # noqa: F401 (fixtures)
    AUTH,
    api,
    browser,
    console_server,
    page,
    phone,
    shot,
    signed_in,
)
from tests.test_policy_validity import NEW, OLD
from tests.test_widget import CHROMIUM, expect

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
OLD_TITLE, NEW_TITLE = OLD.splitlines()[2], NEW.splitlines()[2]


@pytest.fixture(scope="module")
def notices(api):
    for name, text in (("old-2019.txt", OLD), ("new-2023.txt", NEW)):
        files = {"files": (name, text.encode())}
        job = api.post("/api/documents", headers=AUTH, files=files, data={"title": text.splitlines()[2]}).json()
        job_id = job["jobs"][0]["id"]
        deadline = time.monotonic() + 240
        while api.get(f"/api/jobs/{job_id}", headers=AUTH).json()["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    yield
    for doc_id in ("old-2019", "new-2023"):
        api.delete(f"/api/documents/{doc_id}", headers=AUTH)


def test_the_documents_table_shows_sorts_and_filters_by_number_date_and_validity(
    page,
    console_server,
    notices,
    tmp_path,
):
    signed_in(page, console_server)
    page.get_by_role("button", name="文档", exact=True).click()
    old_row = page.locator("#doc-table tbody tr", has_text=OLD_TITLE)
    expect(old_row.locator("td[data-label=文号]")).to_have_text("豫编办〔2019〕12号")
    expect(old_row.locator("td[data-label=效力]")).to_have_text("已废止")
    page.get_by_role("button", name="日期").click()
    page.get_by_role("button", name="日期").click()  # newest first
    expect(page.locator("#doc-table thead th[data-sort=date]")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#doc-table tbody tr").first).to_contain_text(NEW_TITLE)
    page.locator("#doc-validity").select_option("repealed")
    expect(page.locator("#doc-table tbody tr")).to_have_count(1)
    expect(page.locator("#doc-table tbody tr").first).to_contain_text(OLD_TITLE)
    shot(page, tmp_path, "console-desktop-documents-policy.png")


def test_a_correction_made_with_the_keyboard_takes_effect_at_once(page, api, console_server, notices, tmp_path):
    signed_in(page, console_server)
    page.get_by_role("button", name="文档", exact=True).click()
    page.locator("#doc-table tbody tr", has_text=OLD_TITLE).get_by_role("button", name="查看").click()
    fields = page.locator("#doc-policy-fields")
    expect(fields).to_contain_text("豫编办〔2019〕12号（从正文识别）")
    expect(fields).to_contain_text(f"已废止：该文件已于2023-05-01废止，被《{NEW_TITLE}》取代")
    page.locator("#doc-policy-form select[name=validity]").focus()
    page.keyboard.press("ArrowDown")  # (不改) -> 现行有效
    page.get_by_label("文种").focus()
    page.keyboard.type("办法")
    page.get_by_role("button", name="保存修改").focus()
    page.keyboard.press("Enter")
    expect(fields).to_contain_text("现行有效（人工设定）")
    expect(fields).to_contain_text("办法（人工修改，admin）")
    shot(page, tmp_path, "console-desktop-document-policy.png")
    standing = api.get("/api/documents/old-2019/metadata").json()["policy"]["validity"]
    assert standing["status"] == "current" and standing["source"] == "staff"
    page.get_by_role("button", name="全部恢复为识别结果").click()
    expect(fields).to_contain_text("已废止：")
    assert api.get("/api/documents/old-2019/metadata").json()["corrections"] is None


def test_the_document_view_at_375_px(phone, console_server, notices, tmp_path):
    signed_in(phone, console_server)
    phone.get_by_role("button", name="文档", exact=True).click()
    phone.locator("#doc-table tbody tr", has_text=OLD_TITLE).get_by_role("button", name="查看").click()
    expect(phone.locator("#doc-policy-fields")).to_contain_text("豫编办〔2019〕12号")
    wide = phone.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376 &&"
        " e.offsetParent !== null).map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)"
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375, wide  # nothing wider than the phone
    shot(phone, tmp_path, "console-phone-document-policy.png")
