"""The widget under the service's security headers, in a real Chromium: no CSP violation, embedded or at home."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import start_server, stop_server
from tests.test_widget import CHROMIUM, QUESTION, ask, expect, launched_browser, new_page, open_widget

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

EMBEDDER_ORIGIN = "http://county.example"  # Playwright answers for it
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`), true);
"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    # The page on the other origin is Playwright's, an unknown address: let it reach 127.0.0.1 as a real site could.
    with launched_browser("--disable-features=LocalNetworkAccessChecks") as chromium:
        yield chromium


def watched_page(browser):
    page = new_page(browser)
    page.add_init_script(RECORD_VIOLATIONS)
    page.csp_messages = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_messages.append(m.text))
    return page


def violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations") + page.csp_messages


def test_the_demo_page_and_widget_work_with_no_csp_violation(browser, server):
    page = watched_page(browser)
    try:
        open_widget(page, server)
        message = ask(page, QUESTION)
        expect(message.locator(".answer")).to_contain_text("341项")
        message.locator("button.cite").first.click()
        expect(message.locator(".card mark").first).to_be_visible()
        assert violations(page) == []
        assert not page.problems
    finally:
        page.context.close()


def test_the_policy_is_enforced_so_the_check_above_can_fail(browser, server):
    page = watched_page(browser)
    try:
        page.goto(server + "/")
        ran = page.evaluate(
            """() => { const s = document.createElement("script"); s.textContent = "window.__injected = 1";
                       document.body.appendChild(s); return window.__injected === 1; }"""
        )
        page.wait_for_timeout(200)
        assert ran is False
        assert any("script-src" in v for v in violations(page)), violations(page)
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def embeddable_server(seed_data_dir, tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("embed-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    process, url = start_server(
        {
            "POLICYQA_DATA_DIR": str(data_dir),
            "POLICYQA_BUILD_ON_START": "false",
            "POLICYQA_CORS_ORIGINS": EMBEDDER_ORIGIN,
        }
    )
    yield url
    stop_server(process)


def test_the_widget_embedded_on_another_origin_works_under_cors_and_resource_policy(browser, embeddable_server):
    page = watched_page(browser)
    host_page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>县政府网站</title></head><body><p>县政府网站</p>"
        f'<script src="{embeddable_server}/widget.js" data-api="{embeddable_server}" async></script></body></html>'
    )
    page.route(f"{EMBEDDER_ORIGIN}/", lambda route: route.fulfill(status=200, content_type="text/html", body=host_page))
    try:
        page.goto(EMBEDDER_ORIGIN + "/")
        launcher = page.get_by_role("button", name="打开政策问答")
        expect(launcher).to_be_visible()  # widget.js and widget.css loaded across origins
        launcher.click()
        message = ask(page, QUESTION)
        expect(message.locator(".answer")).to_contain_text("341项")  # the API answered across origins
        assert violations(page) == []
        assert not page.problems
    finally:
        page.context.close()
