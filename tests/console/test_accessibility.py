"""Every console page passes axe-core's WCAG 2 A and AA rules and its best practices (labels,
headings and their order, contrast, landmarks, names of links and buttons), has no inline
script or style, and is served with the Content-Security-Policy that forbids them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.console.conftest import ALICE, Console, sign_in

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
PAGES = [
    "/console/",
    "/console/mailboxes",
    "/console/mailboxes?q=user01&state=active&group=emea",
    "/console/mailboxes/user00013@example.com",
    f"/console/mailboxes/{ALICE}",
    "/console/runs",
    "/console/runs?mailbox=user00001@example.com",
    "/console/servers",
    "/console/servers/online",
    "/console/no-such-page-but-a-console-path/../mailboxes/nobody@example.com",
]
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),  # a script without src
    re.compile(r"\son[a-z]+\s*=", re.I),  # an event handler attribute
    re.compile(r"\sstyle\s*=", re.I),  # a style attribute
    re.compile(r"<style", re.I),
]


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (the script is injected through the
    browser's protocol, which the page's CSP does not govern)."""
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"][:120] for n in v["nodes"][:3]]}
        for v in result["violations"]
    ]


def test_the_sign_in_page_is_accessible(page: Page, console: Console) -> None:
    page.goto(console.url("/console/sign-in"))
    assert axe_violations(page) == []


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_and_has_no_inline_code(
    page: Page, console: Console, path: str
) -> None:
    sign_in(page, console)
    response = page.goto(console.url(path))
    assert response is not None
    if "nobody" not in path:
        assert response.status == 200, path
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = response.text()  # as served: scripts may set styles later, through the CSSOM
    assert [p.pattern for p in INLINE if p.search(html)] == []
    assert page.locator("h1").count() == 1
    assert axe_violations(page) == []


def test_a_dry_run_and_a_server_test_are_accessible(page: Page, console: Console) -> None:
    dry_run = console.query(
        "SELECT min(id) FROM sync.runs WHERE dry_run AND plan_items IS NOT NULL"
    )
    sign_in(page, console)
    page.goto(console.url(f"/console/runs/{dry_run}"))
    assert page.locator("#plan tbody tr").count() == 2
    assert axe_violations(page) == []
    page.goto(console.url("/console/servers/sim"))
    page.get_by_label("Mailbox (empty: the server's first active one)").fill(ALICE)
    page.get_by_role("button", name="Test the server").click()
    steps = page.locator("#test-steps li")
    assert steps.count() == 6
    assert page.locator("#test-steps .badge-ok").count() == 6, steps.all_inner_texts()
    assert axe_violations(page) == []


def test_a_phone_sized_page_needs_no_sideways_scrolling(page: Page, console: Console) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, console)
    for path in ("/console/", f"/console/mailboxes/{ALICE}", "/console/servers/online"):
        page.goto(console.url(path))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
