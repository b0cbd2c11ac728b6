"""The console in Chromium, as an operator uses it: sign in, find Alice among 10,000 mailboxes,
preview her recover and read its plan, run it for real and see her mailbox become active,
acknowledge her item error, sign out. The service is a real `sync-service run`; its engine runs
the passes against the simulator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

from playwright.sync_api import Page, expect

from tests.console.conftest import ALICE, TOKEN, Console, sign_in

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "console-overview.png"
ALICE_PAGE = f"/console/mailboxes/{quote(ALICE, safe='@')}"


def test_an_operator_recovers_a_mailbox_found_among_10000(page: Page, console: Console) -> None:
    assert console.query("SELECT count(*) FROM sync.mailboxes") == 10_001
    sign_in(page, console)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    page.get_by_role("link", name="Mailboxes", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("10001 mailboxes match")
    page.get_by_label("Search by address, CRM user or group").fill("alice@sim")
    expect(page.get_by_role("status")).to_contain_text("1 mailbox matches")  # htmx, as typed
    page.get_by_role("link", name=ALICE).click()
    expect(page.locator("#mailbox-state")).to_have_text("needs recovery")

    page.get_by_role("button", name="Dry-run recover").click()
    expect(page.get_by_role("status")).to_contain_text("Recover dry run queued")
    plan = page.locator("#recover-plan")
    expect(plan).to_contain_text("Rita", timeout=30_000)  # the engine ran it; htmx showed it
    expect(plan).to_contain_text("Otto")
    expect(plan.locator("tbody tr")).to_have_count(2)
    expect(plan).to_contain_text("crm to exchange")
    # a dry run writes nothing
    assert _sim_surnames(console) == set()
    expect(page.locator("#mailbox-state")).to_have_text("needs recovery")

    page.get_by_role("button", name="Run recover for real").click()
    expect(page.locator("#mailbox-state")).to_have_text("active", timeout=30_000)
    assert _sim_surnames(console) == {"Recovered", "Restored"}
    assert console.query("SELECT state FROM sync.mailboxes WHERE email = $1", ALICE) == "active"
    others = (  # the service's engine ran Alice's passes only; the 10,000 are the database's
        "SELECT count(*) FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id"
        " WHERE r.engine <> 'engine-a' AND m.email <> $1"
    )
    assert console.query(others, ALICE) == 0
    last_runs = page.locator("section", has=page.get_by_role("heading", name="Last runs"))
    runs = last_runs.locator("tbody tr")
    expect(runs.first).to_contain_text("recover")
    expect(runs.first).to_contain_text("exchange create 2")

    errors = page.locator("section", has=page.get_by_role("heading", name="Item errors"))
    errors.get_by_role("checkbox").check()
    errors.get_by_role("button", name="Acknowledge the chosen errors").click()
    expect(page.get_by_role("status")).to_contain_text("Item errors acknowledged")
    expect(errors.locator(".badge-acknowledged")).to_have_count(1)
    acknowledged = "SELECT acknowledged_at IS NOT NULL FROM sync.item_errors WHERE crm_id = $1"
    assert console.query(acknowledged, "crm-alice-1") is True

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto(console.url(ALICE_PAGE))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def _sim_surnames(console: Console) -> set[str]:
    """The surnames of Alice's contacts, as the simulator's admin API lists them."""
    with urlopen(f"{console.sim.admin_url}/mailboxes/{ALICE}/items", timeout=10) as resp:
        listing = json.load(resp)
    return {str(i["fields"].get("Surname")) for i in listing["items"] if i["folder"] == "contacts"}


def test_a_wrong_token_opens_no_session(page: Page, console: Console) -> None:
    page.goto(console.url("/console/servers"))
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    sign_in(page, console, token="not-the-token")
    expect(page.get_by_role("alert")).to_have_text("That is not the API token.")
    assert page.context.cookies() == [] or all(
        c["name"] != "sync_console" for c in page.context.cookies()
    )
    sign_in(page, console)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")


def test_the_session_cookie_is_httponly_and_strict(page: Page, console: Console) -> None:
    sign_in(page, console)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "sync_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    assert cookie["secure"] is False  # plain HTTP here; test_session.py has the TLS case
    assert page.evaluate("document.cookie") == ""  # no script can read it
    assert TOKEN not in page.url


def test_the_keyboard_alone_signs_in_and_reaches_a_mailbox(page: Page, console: Console) -> None:
    page.goto(console.url("/console/"))
    expect(page.get_by_label("API token")).to_be_focused()  # the form's only field
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(3):  # the brand, Overview, then Mailboxes
        page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Mailboxes", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mailboxes")


def test_the_overview_screenshot_for_the_readme(page: Page, console: Console) -> None:
    """The README shows this picture: the overview with its chart drawn."""
    sign_in(page, console)
    page.locator("canvas[data-drawn]").wait_for(state="attached")  # console.js drew it
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert SCREENSHOT.stat().st_size > 20_000
