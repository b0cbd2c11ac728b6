"""State-changing requests the console refuses: a POST without a session, without the CSRF
token of its session, with another token, from another origin, or after sign-out; none of them
changes the mailbox."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Playwright

from tests.console.conftest import Console, sign_in

TARGET = "user00042@example.com"
DISABLE = f"/console/mailboxes/{TARGET}/disable"
STATE = "SELECT state FROM sync.mailboxes WHERE email = $1"


def _csrf(page: Page) -> str:
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    return token


def test_a_post_without_a_session_is_refused(playwright: Playwright, console: Console) -> None:
    anonymous = playwright.request.new_context()
    try:
        answer = anonymous.post(console.url(DISABLE), form={"csrf": "x"}, max_redirects=0)
        assert answer.status == 401
        assert "sign in first" in answer.text()
        forged = {"Cookie": "sync_console=v1.eyJzaWQiOiAiYSJ9.AAAA"}
        answer = anonymous.post(console.url(DISABLE), form={"csrf": "x"}, headers=forged)
        assert answer.status == 401
    finally:
        anonymous.dispose()
    assert console.query(STATE, TARGET) == "active"


def test_a_post_without_its_csrf_token_is_refused(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.goto(console.url(f"/console/mailboxes/{TARGET}"))
    csrf = _csrf(page)
    url = console.url(DISABLE)
    assert page.request.post(url, form={"reason": "no token"}, max_redirects=0).status == 403
    wrong = page.request.post(url, form={"csrf": csrf[:-2] + "xx"}, max_redirects=0)
    assert wrong.status == 403
    elsewhere = {"Origin": "https://attacker.example"}
    foreign = page.request.post(url, form={"csrf": csrf}, headers=elsewhere, max_redirects=0)
    assert foreign.status == 403
    assert console.query(STATE, TARGET) == "active"

    done = page.request.post(url, form={"csrf": csrf, "reason": "test"}, max_redirects=0)
    assert done.status == 303  # the same request with its token goes through
    assert console.query(STATE, TARGET) == "disabled"
    back = page.request.post(
        console.url(f"/console/mailboxes/{TARGET}/enable"), form={"csrf": csrf}, max_redirects=0
    )
    assert back.status == 303
    assert console.query(STATE, TARGET) == "active"


def test_a_session_signed_out_is_refused(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.goto(console.url(f"/console/mailboxes/{TARGET}"))
    csrf = _csrf(page)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "sync_console"]
    page.get_by_role("button", name="Sign out").click()
    replay = page.request.post(
        console.url(DISABLE),
        form={"csrf": csrf},
        headers={"Cookie": f"sync_console={cookie['value']}"},
        max_redirects=0,
    )
    assert replay.status == 401
    assert console.query(STATE, TARGET) == "active"


def test_the_api_token_never_appears_in_a_url(page: Page, console: Console) -> None:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    sign_in(page, console)
    page.goto(console.url(f"/console/mailboxes/{TARGET}"))
    assert urls and not [u for u in urls if re.search("console-test-token", u)]
