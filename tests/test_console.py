"""The admin console in a real Chromium against a real server on a copy of the seed index.

Upload a .docx until /api/ask cites it, find it in the table and the retrieval test, delete it from its row
until it is cited no more; a wrong token shows nothing; an HTML title is shown as text; keyboard only;
375 px; no CSP violation anywhere (every page is watched, and its teardown asserts it).
"""

from __future__ import annotations

import io
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import docx
import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.test_security_browser import RECORD_VIOLATIONS
from tests.test_widget import CHROMIUM, expect, launched_browser, new_page

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

TOKEN = "console-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SHOTS = Path("/tmp/console-shots")  # where the lead looks; the pytest tmp dir keeps a copy too
ANSWER_TIMEOUT_MS = 60_000
DOC_TITLE = "关于设立乡镇应急管理办公室的通知"
QUESTION = "乡镇应急管理办公室核定编制多少名？"
HTML_TITLE = "<img src=x onerror=alert(1)>应急预案<script>alert(2)</script>"


def docx_bytes(title: str, paragraphs: list[str]) -> bytes:
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading("一、总体要求", level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


EMERGENCY_DOCX = docx_bytes(
    DOC_TITLE,
    [
        "各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱、森林防火和安全生产的统筹协调。",
        "县财政每年安排专项经费120万元，用于乡镇应急物资储备和队伍培训。",
    ],
)


@pytest.fixture(scope="module")
def console_server(seed_data_dir, tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("console-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN}
    process, url = start_server(env)
    yield url
    output = stop_server(process)
    assert "Traceback" not in output, output
    assert TOKEN not in output  # the token is never logged (it never travels in a URL)


@pytest.fixture(scope="module")
def api(console_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_server, timeout=60.0) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with launched_browser() as chromium:
        yield chromium


def watched(browser, **options):
    """A page that records CSP violations and console errors besides new_page's dialogs and script errors."""
    page = new_page(browser, **options)
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    return page


def finish(page) -> None:
    problems = page.problems + page.evaluate("window.__cspViolations")
    page.context.close()
    assert not problems


@pytest.fixture()
def page(browser) -> Iterator:
    page = watched(browser)
    yield page
    finish(page)


@pytest.fixture()
def phone(browser) -> Iterator:
    page = watched(browser, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    yield page
    finish(page)


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / name, SHOTS / name)


def sign_in(page, base_url: str, token: str = TOKEN) -> None:
    page.goto(base_url + "/admin")
    page.get_by_label("管理令牌").fill(token)
    page.get_by_role("button", name="登录").click()


def signed_in(page, base_url: str) -> None:
    sign_in(page, base_url)
    expect(page.locator("#doc-table tbody tr").first).to_be_visible()


def cited(api: httpx.Client, question: str) -> list[str]:
    body = api.post("/api/ask", json={"question": question}).json()
    return [c["doc_id"] for c in body["citations"]] if body["answerable"] else []


def retrieval_test(page, question: str):
    box = page.get_by_role("searchbox", name="检索测试")
    box.fill(question)
    box.press("Enter")
    columns = page.locator("#test-results .mode")
    expect(columns).to_have_count(3)
    for i in range(3):
        expect(columns.nth(i).locator(".verdict")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    return columns


def test_upload_until_cited_then_delete_from_its_row_until_not(page, api, console_server, tmp_path):
    signed_in(page, console_server)
    page.get_by_role("button", name="上传文档").click()
    page.locator("#files").set_input_files(
        [{"name": "emergency.docx", "mimeType": "application/octet-stream", "buffer": EMERGENCY_DOCX}]
    )
    page.get_by_role("button", name="上传", exact=True).click()
    job = page.locator("#upload-jobs .job").first
    expect(job).to_have_class("job done", timeout=ANSWER_TIMEOUT_MS)
    expect(job).to_contain_text("已收录为 emergency")
    assert cited(api, QUESTION)[:1] == ["emergency"]

    page.get_by_role("button", name="文档", exact=True).click()
    row = page.locator("#doc-table tbody tr", has_text=DOC_TITLE)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("emergency.docx")
    expect(row.locator("td").nth(2)).to_have_text("docx")
    expect(row).to_contain_text("上传")

    page.get_by_role("button", name="检索测试").click()
    columns = retrieval_test(page, QUESTION)
    hybrid = columns.nth(0)
    expect(hybrid.locator(".verdict")).to_contain_text("作答")
    expect(hybrid.locator(".short strong")).to_have_text("7名")
    expect(hybrid.locator(".passage").first).to_contain_text(DOC_TITLE)
    expect(hybrid.locator(".passage mark").first).to_contain_text("核定编制7名")
    for i in range(3):  # one scale in every mode: a percentage from 0 to 100
        expect(columns.nth(i).locator(".relevance").first).to_have_text(re.compile(r"相关度 (100|[1-9]?[0-9])%$"))
    raw = hybrid.locator(".raw-scores").first
    expect(raw).to_be_hidden()  # BM25 and cosine side by side only on demand
    page.get_by_role("button", name="显示原始分数").click()
    expect(raw).to_be_visible()
    expect(raw).to_contain_text("语义（余弦）")
    expect(raw).to_contain_text("关键词（BM25）")
    shot(page, tmp_path, "console-desktop-retrieval.png")

    page.get_by_role("button", name="文档", exact=True).click()
    row.get_by_role("button", name="查看").click()
    expect(page.locator("#doc-title")).to_have_text(DOC_TITLE)
    expect(page.locator(".chunk").first).to_contain_text("章节：一、总体要求")
    page.get_by_role("button", name="← 返回文档列表").click()

    row.get_by_role("button", name=f"删除 {DOC_TITLE}").click()
    dialog = page.get_by_role("dialog", name="请确认")
    expect(dialog).to_contain_text(DOC_TITLE)
    shot(page, tmp_path, "console-desktop-confirm.png")
    dialog.get_by_role("button", name="确认删除").click()
    expect(row).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text("已删除")
    assert "emergency" not in cited(api, QUESTION)
    shot(page, tmp_path, "console-desktop-documents.png")


def test_a_wrong_token_shows_an_error_and_nothing_else(page, console_server):
    sign_in(page, console_server, "not-the-token")
    expect(page.locator("#sign-in-error")).to_have_text("管理令牌不正确，请检查后重新输入。")
    expect(page.locator("#app")).to_be_hidden()
    assert page.locator("#doc-table tbody tr").count() == 0
    assert page.evaluate("sessionStorage.length") == 0
    assert "not-the-token" not in page.url
    # Chromium logs the refused request itself: expected here, and the only console error allowed.
    page.problems[:] = [p for p in page.problems if "status of 401" not in p]


def test_a_write_key_sees_only_its_knowledge_bases(page, api, console_server):
    made = api.post("/api/kbs", headers=AUTH, json={"kb_id": "internal", "title": "内部材料", "public": False})
    assert made.status_code in (201, 409), made.text
    key = api.post("/api/keys", headers=AUTH, json={"kbs": ["internal"], "scope": "write", "label": "staff"}).json()
    sign_in(page, console_server, key["key"])
    expect(page.locator("#who-text")).to_have_text("已登录：写权限密钥")
    expect(page.locator("#kb-select option")).to_have_count(1)
    expect(page.locator("#kb-select option")).to_have_text("内部材料（internal）")
    page.get_by_role("button", name="知识库").click()
    expect(page.locator("#kb-create")).to_be_hidden()  # creating knowledge bases is the admin's
    expect(page.locator("#kb-table tbody tr")).to_have_count(1)


def finished(api: httpx.Client, job_id: str, timeout: float = 60.0) -> dict:
    """The job, once done or failed."""
    deadline = time.monotonic() + timeout
    while (job := api.get(f"/api/jobs/{job_id}", headers=AUTH).json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def test_an_html_title_is_shown_as_text_and_runs_nothing(page, api, console_server):
    body = docx_bytes("预案", ["各乡镇每年组织一次应急演练，演练方案报县应急管理局备案。"])
    response = api.post(
        "/api/documents", headers=AUTH, files={"files": ("drill.docx", body)}, data={"title": HTML_TITLE}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["jobs"][0]["id"]
    finished(api, job_id)
    signed_in(page, console_server)
    row = page.locator("#doc-table tbody tr", has_text="应急预案")
    expect(row.locator(".title-cell")).to_have_text(HTML_TITLE)
    assert page.locator("#doc-table img, #doc-table script").count() == 0
    row.get_by_role("button", name="查看").click()
    expect(page.locator("#doc-title")).to_have_text(HTML_TITLE)
    assert page.locator("main img, main script").count() == 0
    assert not page.problems  # no alert dialog, no script error


def test_keyboard_only_sign_in_and_search(page, console_server):
    page.goto(console_server + "/admin")
    expect(page.get_by_label("管理令牌")).to_be_focused()  # autofocus: no pointer needed to start
    page.keyboard.type(TOKEN)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="登录")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#docs-title")).to_be_focused()
    search_tab = page.get_by_role("button", name="检索测试")
    for _ in range(12):  # back along the tabs (运行状况, 评测, 密钥, …) to 检索测试
        page.keyboard.press("Shift+Tab")
        if search_tab.evaluate("(tab) => tab === document.activeElement"):
            break
    expect(search_tab).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_role("searchbox", name="检索测试")).to_be_focused()
    page.keyboard.type("海安县首批下放了多少项行政权力事项？")
    page.keyboard.press("Enter")
    expect(page.locator("#test-results .mode .short strong").first).to_have_text("341项", timeout=ANSWER_TIMEOUT_MS)


def test_the_phone_layout_has_no_horizontal_overflow(phone, console_server, tmp_path):
    phone.goto(console_server + "/admin")
    shot(phone, tmp_path, "console-phone-sign-in.png")
    signed_in(phone, console_server)
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert phone.evaluate(overflow) == 0
    shot(phone, tmp_path, "console-phone-documents.png")
    phone.get_by_role("button", name="检索测试").click()
    retrieval_test(phone, "海安县首批下放了多少项行政权力事项？")
    assert phone.evaluate(overflow) == 0
    shot(phone, tmp_path, "console-phone-retrieval.png")
    phone.get_by_role("button", name="运行状况").click()
    expect(phone.locator("#route-table tbody tr").first).to_be_visible()
    assert phone.evaluate(overflow) == 0
    shot(phone, tmp_path, "console-phone-health.png")


DROP_FILES = """([name, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name));
  const zone = document.querySelector("#drop-zone");
  for (const type of ["dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true }));
  }
}"""


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.docx", "PK\u0003\u0004 not really a zip", "文件无法读取：可能已损坏"),
        ("notes.xyz", "乡镇", "不支持这种文件格式"),
    ],
)
def test_a_dropped_unreadable_file_fails_with_its_reason_in_chinese(page, console_server, name, content, reason):
    signed_in(page, console_server)
    page.get_by_role("button", name="上传文档").click()
    page.evaluate(DROP_FILES, [name, content])
    expect(page.locator("#chosen li")).to_have_text(re.compile(name))
    page.get_by_role("button", name="上传", exact=True).click()
    job = page.locator("#upload-jobs .job").first
    expect(job).to_have_class("job failed")
    expect(job.locator(".job-reason")).to_contain_text(reason)
    page.problems[:] = [p for p in page.problems if "status of 422" not in p]  # the refusal, as Chromium logs it


def test_replace_from_its_row_keeps_the_id_and_changes_the_content(page, api, console_server, tmp_path):
    first = docx_bytes("经费通知", ["乡镇专项经费为每年八十万元整。"])
    response = api.post("/api/documents", headers=AUTH, files={"files": ("funds.docx", first)})
    job_id = response.json()["jobs"][0]["id"]
    finished(api, job_id)
    signed_in(page, console_server)
    row = page.locator("#doc-table tbody tr", has_text="经费通知")
    with page.expect_file_chooser() as chooser:
        row.get_by_role("button", name="替换 经费通知").click()
    second = docx_bytes("经费通知", ["乡镇专项经费为每年九十五万元整。"])
    chooser.value.set_files({"name": "funds-2.docx", "mimeType": "application/octet-stream", "buffer": second})
    progress = page.locator("#doc-table tbody tr[data-doc-id=funds] + tr.replace-row .job")  # where it was clicked
    expect(progress).to_have_class("job done", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#notice")).to_contain_text("已替换《经费通知》")
    shot(page, tmp_path, "console-desktop-replace-progress.png")
    newest = api.get("/api/documents?sort=updated_at&descending=true", headers=AUTH).json()["data"][0]
    added = [d for d in api.get("/api/documents", headers=AUTH).json()["data"] if d["doc_id"] == "funds"]
    assert newest["doc_id"] == "funds" and newest["added_at"] == added[0]["added_at"] <= newest["updated_at"]
    page.get_by_role("button", name="更新时间").click()
    page.get_by_role("button", name="更新时间").click()  # newest first
    expect(page.locator("#doc-table th[data-sort=updated_at]")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#doc-table tbody tr").first).to_have_attribute("data-doc-id", "funds")
    expect(row.locator("td[data-label=更新时间] time")).to_have_attribute("datetime", newest["updated_at"])
    row.get_by_role("button", name="查看").click()
    expect(page.locator(".chunk-text").first).to_contain_text("九十五万元")


def test_the_admin_creates_edits_and_deletes_a_knowledge_base(page, console_server):
    signed_in(page, console_server)
    page.get_by_role("button", name="知识库", exact=True).click()
    form = page.locator("#kb-create")
    form.get_by_label("编号（用于网址：小写字母、数字、- 和 _）").fill("town-a")
    form.get_by_label("标题", exact=True).fill("甲镇材料")
    form.get_by_role("button", name="创建").click()
    row = page.locator("#kb-table tbody tr", has_text="town-a")
    expect(row).to_contain_text("甲镇材料")
    expect(page.locator("#kb-select option", has_text="town-a")).to_have_count(1)
    row.get_by_role("button", name="编辑 甲镇材料").click()
    dialog = page.get_by_role("dialog", name="编辑知识库")
    dialog.get_by_label("标题").fill("甲镇内部材料")
    dialog.get_by_role("button", name="保存").click()
    expect(row).to_contain_text("甲镇内部材料")
    row.get_by_role("button", name="删除知识库 甲镇内部材料").click()
    page.get_by_role("dialog", name="请确认").get_by_role("button", name="确认删除").click()
    expect(row).to_have_count(0)


def test_the_admin_runs_the_gold_set_and_reads_its_table_and_plot(page, console_server, tmp_path):
    signed_in(page, console_server)
    page.get_by_role("button", name="评测").click()
    page.get_by_label("仅语义向量").uncheck()  # one mode keeps the run short
    page.get_by_label("仅关键词（BM25）").uncheck()
    page.get_by_role("button", name="运行评测").click()
    run = page.locator(".eval-run").first
    expect(run).to_have_attribute("data-state", "done", timeout=120_000)
    expect(run.locator("table")).to_contain_text("首位文档命中率")
    expect(run.locator("img")).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    assert run.locator("img").evaluate("(img) => img.decode().then(() => img.naturalWidth)") > 0
    shot(page, tmp_path, "console-desktop-evaluation.png")
