"""The chat widget in a real Chromium against a real server: answers, citations, keyboard, phones, escaping."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the widget tests need playwright: pip install playwright")
expect = sync_api.expect

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_TIMEOUT_MS = 60_000
QUESTION = "海安县首批下放了多少项行政权力事项？"
HAIAN_TITLE = "关于中心镇行政管理体制改革的实践与思考"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"

# Deepest focused element, through shadow roots: what a keyboard user is on.
FOCUSED_LABEL = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  return el ? (el.getAttribute("aria-label") || el.className || el.tagName) : null;
}"""


@contextlib.contextmanager
def launched_browser(*extra_args: str) -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with launched_browser() as chromium:
        yield chromium


def new_page(browser, **context_options):
    """A page that fails the test on any alert/confirm dialog or uncaught script error."""
    # Reduced motion: no colour transitions half-way through in the screenshots.
    context = browser.new_context(
        **{"viewport": {"width": 1280, "height": 800}, "reduced_motion": "reduce", **context_options}
    )
    page = context.new_page()
    page.problems = []
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    return page


@pytest.fixture()
def page(browser) -> Iterator:
    page = new_page(browser)
    yield page
    problems = page.problems
    page.context.close()
    assert not problems


def open_widget(page, base_url: str):
    page.goto(base_url + "/")
    launcher = page.get_by_role("button", name="打开政策问答")
    expect(launcher).to_be_visible()  # visible only once widget.css has loaded
    launcher.click()
    expect(page.get_by_role("dialog", name="政策问答")).to_be_visible()
    # By the CSS class: on a phone the open panel covers the button, which is then hidden.
    expect(page.locator(".launcher")).to_have_attribute("aria-expanded", "true")
    return launcher


def ask(page, question: str):
    """Type a question, press Enter and wait for the answer to finish; returns the assistant message."""
    messages = page.locator(".msg.bot")
    count = messages.count()
    box = page.get_by_role("textbox", name="输入问题")
    box.fill(question)
    box.press("Enter")
    expect(messages).to_have_count(count + 1)
    message = messages.last
    expect(message).not_to_have_attribute("aria-busy", "true", timeout=ANSWER_TIMEOUT_MS)
    return message


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_answer_streams_in_with_citations_and_highlighted_source(page, server):
    open_widget(page, server)
    message = ask(page, QUESTION)
    answer = message.locator(".answer")
    expect(answer).to_contain_text("341项")
    expect(message.locator(".status")).to_have_count(0)
    assert "[1]" not in answer.inner_text()  # markers became buttons
    short = message.locator(".short-answer")  # the short answer first, above the quotes that prove it
    expect(short.locator("strong")).to_have_text("341项")
    assert short.evaluate("(node) => node.nextElementSibling.classList.contains('answer')")

    first = message.locator("button.cite").first
    expect(first).to_have_text("1")
    expect(first).to_have_attribute("aria-label", f"引用 1：{HAIAN_TITLE}")
    first.click()
    card = message.locator(".card").first
    expect(card).to_be_visible()
    expect(card).to_contain_text(HAIAN_TITLE)
    expect(card.locator(".card-meta")).to_contain_text("一、主要做法 › （二）推进权力下放")
    expect(card.locator("mark").filter(has_text="341项")).to_have_count(1)
    expect(first).to_have_attribute("aria-expanded", "true")
    screenshot(page, "widget-desktop.png")

    first.press("Enter")  # the keyboard toggles it closed again
    expect(card).to_be_hidden()
    expect(first).to_have_attribute("aria-expanded", "false")


def test_unanswerable_question_says_so_and_lists_nearest_passages(page, server):
    open_widget(page, server)
    message = ask(page, "红烧肉怎么做才好吃？")
    expect(message.locator(".not-covered")).to_contain_text("文档未涉及此问题")
    expect(message.locator("button.cite")).to_have_count(0)  # nothing poses as a cited answer
    nearest = message.locator("button.nearest")
    assert nearest.count() >= 1
    nearest.first.click()
    card = message.locator(".card").first
    expect(card).to_be_visible()
    expect(card).to_have_class("card weak")
    assert card.locator(".card-text").inner_text().strip()
    screenshot(page, "widget-unanswerable.png")


def test_keyboard_only(page, server):
    page.goto(server + "/")
    launcher = page.get_by_role("button", name="打开政策问答")
    expect(launcher).to_be_visible()
    page.keyboard.press("Tab")  # the demo page has no other focusable element
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="输入问题")
    expect(box).to_be_focused()

    page.keyboard.type("第一行")
    page.keyboard.press("Shift+Enter")  # a newline, not a send
    assert box.input_value() == "第一行\n"
    expect(page.locator(".msg")).to_have_count(0)
    box.fill("")

    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    message = page.locator(".msg.bot").last
    expect(message.locator(".answer")).to_contain_text("341项", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".msg.user")).to_have_text(QUESTION)
    expect(box).to_have_value("")

    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_LABEL) == "send"  # input, then its send button
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")


def test_phone_layout_takes_the_screen_without_horizontal_overflow(browser, server):
    page = new_page(browser, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        open_widget(page, server)
        message = ask(page, QUESTION)
        expect(message.locator(".answer")).to_contain_text("341项")
        message.locator("button.cite").first.click()
        expect(message.locator(".card mark").first).to_be_visible()

        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = page.get_by_role("dialog").bounding_box()
        assert box["width"] <= 375 and box["x"] >= 0
        assert box["height"] == pytest.approx(740, abs=1)  # the whole screen
        log_overflow = page.locator(".log").evaluate("el => el.scrollWidth - el.clientWidth")
        assert log_overflow <= 0
        screenshot(page, "widget-phone.png")
        assert not page.problems
    finally:
        page.context.close()


PARAGRAPH_STYLE = """el => {
  const s = getComputedStyle(el);
  return [s.color, s.fontSize, s.fontFamily, s.lineHeight, s.margin, s.backgroundColor].join(" | ");
}"""


def test_host_page_is_untouched(browser, server):
    bare = new_page(browser)
    bare.route("**/widget.js", lambda route: route.abort())
    bare.goto(server + "/")
    before_style = bare.locator("#host-content").evaluate(PARAGRAPH_STYLE)
    before_children = bare.evaluate("[...document.body.children].map(e => e.id || e.tagName)")
    bare.context.close()

    page = new_page(browser)
    try:
        launcher = open_widget(page, server)
        assert page.locator("#host-content").evaluate(PARAGRAPH_STYLE) == before_style
        after_children = page.evaluate("[...document.body.children].map(e => e.id || e.tagName)")
        assert after_children == [*before_children, "policyqa-widget-host"]
        # ...and the page's broad rules (button { hotpink }, div { red border }) do not reach the widget.
        assert launcher.evaluate("el => getComputedStyle(el).backgroundColor") != "rgb(255, 105, 180)"
        assert page.locator(".log").evaluate("el => getComputedStyle(el).borderTopStyle") == "none"
        assert page.locator("#policyqa-widget-host").evaluate("el => getComputedStyle(el).position") == "fixed"
        assert not page.problems
    finally:
        page.context.close()


@pytest.fixture()
def xss_server(tmp_path, embedder) -> Iterator[str]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "danger.txt").write_text(
        f"危险字符测试文件\n本文件包含{XSS_SCRIPT}和{XSS_IMG}两段文字，用于检查网页挂件的转义。\n乡镇便民服务中心设在镇政府一楼。\n",
        encoding="utf-8",
    )
    process, base_url = start_server({"POLICYQA_DOCS_DIR": str(docs), "POLICYQA_DATA_DIR": str(tmp_path / "data")})
    yield base_url
    output = stop_server(process)
    assert "Traceback" not in output, output


def test_passage_markup_is_shown_as_text_never_run(page, xss_server):
    open_widget(page, xss_server)
    message = ask(page, "危险字符测试文件包含什么？")
    # Answered or declined, the passage is one click away: a marker or a nearest-passage button.
    message.locator("button.cite, button.nearest").first.click()
    card = message.locator(".card").first
    expect(card).to_be_visible()
    text = card.inner_text()
    assert XSS_IMG in text and XSS_SCRIPT in text
    screenshot(page, "widget-xss.png")
    widget_elements = page.evaluate(
        """() => [...document.getElementById("policyqa-widget-host").shadowRoot.querySelectorAll("img, script")]
                 .map(e => e.outerHTML)"""
    )
    assert widget_elements == []
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now


def sse(*events: tuple[str, dict]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n" for name, data in events)


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ({"abort": True}, "无法连接问答服务"),
        (
            {
                "status": 503,
                "content_type": "application/json",
                "body": '{"error": {"code": "busy", "message": "稍后再试"}}',
            },
            "稍后再试",
        ),
        ({"status": 500, "content_type": "text/plain", "body": "oops"}, "HTTP 500"),
        (
            {
                "status": 200,
                "content_type": "text/event-stream",
                "body": sse(("error", {"error": {"code": "internal_error", "message": "索引不可用"}})),
            },
            "索引不可用",
        ),
        ({"status": 200, "content_type": "text/event-stream", "body": sse(("citations", {"citations": []}))}, "中断"),
    ],
    ids=["network", "json-error", "non-json-500", "error-event", "cut-stream"],
)
def test_errors_are_shown_in_the_log(page, server, reply, shown):
    def handle(route):
        if reply.get("abort"):
            route.abort()
        else:
            route.fulfill(**reply)

    page.route("**/api/ask", handle)
    open_widget(page, server)
    message = ask(page, QUESTION)
    expect(message.locator(".error")).to_contain_text(shown)
    expect(page.get_by_role("button", name="发送")).to_be_enabled()  # the next question can be asked


def test_a_followup_is_sent_with_the_conversation_before_it(page, server):
    bodies = []
    page.on("request", lambda request: bodies.append(request.post_data_json) if "/api/ask" in request.url else None)
    open_widget(page, server)
    first = ask(page, "镇江市除31个镇外共有多少个街道？")
    expect(first.locator(".answer")).to_contain_text("25个街道")
    followup = ask(page, "那京口区呢？")
    expect(followup.locator(".answer")).to_contain_text("京口6个")
    followup.locator("button.cite").first.click()
    expect(followup.locator(".card").first).to_contain_text("以镇江市为样本")
    assert bodies[0]["history"] == []
    history = bodies[1]["history"]
    assert [turn["role"] for turn in history] == ["user", "assistant"]
    assert history[0]["content"] == "镇江市除31个镇外共有多少个街道？"
    assert "25个街道" in history[1]["content"] and "[1]" in history[1]["content"]
    screenshot(page, "widget-followup.png")


def test_data_kb_and_data_key_pick_the_knowledge_base_and_send_the_key(page, server):
    """A page embedding the widget for knowledge base 'staff' with a read key: the question goes to
    /api/kbs/staff/ask with the key as a bearer (forwarded here to default's /api/ask, which has the answer)."""
    seen = []
    html = (
        "<!doctype html><html lang='zh'><head><title>staff</title></head><body>"
        f"<script src='{server}/widget.js' data-kb='staff' data-key='pqa_0123abcd_visible-read-key' async></script>"
        "</body></html>"
    )
    page.route(f"{server}/staff-page", lambda route: route.fulfill(body=html, content_type="text/html"))

    def forward(route):
        seen.append((route.request.url, route.request.headers.get("authorization")))
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "authorization"}
        route.continue_(url=f"{server}/api/ask", headers=headers)

    page.route("**/api/kbs/staff/ask", forward)
    page.goto(f"{server}/staff-page")
    page.get_by_role("button", name="打开政策问答").click()
    message = ask(page, QUESTION)
    expect(message.locator(".answer")).to_contain_text("341项")
    assert seen == [(f"{server}/api/kbs/staff/ask", "Bearer pqa_0123abcd_visible-read-key")]


def test_thumbs_up_and_down_post_the_verdict_with_the_answer_as_shown(page, server):
    posted = []
    page.on("request", lambda r: posted.append(r.post_data_json) if r.url.endswith("/api/feedback") else None)
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/api/feedback") else None)
    open_widget(page, server)
    message = ask(page, QUESTION)
    rating = message.get_by_role("group", name="这个回答有帮助吗？")
    down = rating.get_by_role("button", name="没有帮助")
    expect(down).to_have_attribute("aria-expanded", "false")

    # The keyboard alone: 👎 opens the choice on the verdict that fits an answer; arrows pick another.
    message.locator(".answer button.cite").last.focus()
    page.keyboard.press("Tab")
    expect(rating.get_by_role("button", name="有帮助", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(down).to_be_focused()
    page.keyboard.press("Enter")
    expect(down).to_have_attribute("aria-expanded", "true")
    wrong = message.get_by_role("radio", name="回答有误")
    expect(wrong).to_be_checked()
    expect(wrong).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(message.get_by_role("radio", name="文档里没有答案，不该这样回答")).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.type("数字没错，但应该引用原文那一段")
    screenshot(page, "widget-feedback-choice.png")
    page.keyboard.press("Escape")  # closes the choice, not the chat
    expect(message.locator(".fb-choice")).to_be_hidden()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(down).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(message.get_by_role("button", name="提交")).to_be_focused()
    page.keyboard.press("Enter")

    thanks = message.locator(".fb-thanks")
    expect(thanks).to_have_text("谢谢，您的反馈已提交，工作人员会核查这个回答。")
    expect(thanks).to_be_focused()
    expect(message.locator(".feedback, .fb-choice")).to_have_count(0)
    screenshot(page, "widget-feedback-thanks.png")
    assert statuses == [201]
    (sent,) = posted
    assert sent["verdict"] == "should_have_declined" and sent["comment"] == "数字没错，但应该引用原文那一段"
    assert sent["question"] == QUESTION and sent["channel"] == "widget"
    assert "341项" in sent["answer"]["text"] and sent["answer"]["short_answer"] == "341项"
    assert sent["answer"]["answerable"] is True
    first = sent["citations"][0]
    assert first["doc_id"] == "haian-central-town-reform" and first["title"] == HAIAN_TITLE
    assert "341项" in first["quote"] and len(first["quote"]) <= 400 and isinstance(first["chunk_id"], int)

    # A declined answer (a new conversation: no history to read it as a follow-up): 👎 would say it should have
    # been answered; 👍 is one click, and the thanks replaces both.
    open_widget(page, server)
    declined = ask(page, "红烧肉怎么做才好吃？")
    expect(declined.locator(".not-covered")).to_be_visible()
    declined.get_by_role("button", name="没有帮助").click()
    expect(declined.get_by_role("radio", name="文档里有答案，应该回答")).to_be_checked()
    declined.get_by_role("button", name="取消").click()
    expect(declined.locator(".fb-choice")).to_be_hidden()
    declined.get_by_role("button", name="有帮助", exact=True).click()
    expect(declined.locator(".fb-thanks")).to_have_text("谢谢您的反馈！")
    assert statuses == [201, 201] and posted[1]["verdict"] == "helpful"
    assert posted[1]["answer"]["answerable"] is False
