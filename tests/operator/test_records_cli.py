"""`records link|unlink|show` and their API: CRM users linked to shared (firm) records one at
a time and by CSV, invalid rows reported by line as the mailbox import does, the change log
naming each newly linked user (real PostgreSQL, in-process CLI, real socket for the API)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from tests.operator.apiclient import AUTH, api_client
from tests.operator.conftest import Cli
from tests.operator.dbutil import fetch

USERS = 20
CONTACTS = 50


def _seed(url: str) -> tuple[list[str], list[str]]:
    """USERS CRM users (u0 owns everything) and CONTACTS contacts: (emails, contact ids)."""
    fetch(url, "INSERT INTO crm.users (email) SELECT 'u' || n || '@firm.example' "
               "FROM generate_series(0, $1 - 1) AS n", USERS)  # fmt: skip
    owner = fetch(url, "SELECT id FROM crm.users WHERE email = 'u0@firm.example'")[0]["id"]
    rows = fetch(
        url,
        "INSERT INTO crm.contacts (owner_id, last_name) "
        "SELECT $1, 'Firm ' || n FROM generate_series(1, $2) AS n RETURNING id::text",
        owner,
        CONTACTS,
    )
    return [f"u{n}@firm.example" for n in range(USERS)], sorted(r["id"] for r in rows)


def test_a_thousand_links_by_csv_invalid_rows_by_line(
    run_cli: Cli, cli_env: str, tmp_path: Path
) -> None:
    emails, ids = _seed(cli_env)
    rows = ["entity,record_id,email"]
    rows += [f"contacts,{rid},{email}" for rid in ids for email in emails[1:]]  # 950 rows
    good = len(rows) - 1
    rows += [
        f"contact,{ids[0]},nobody@firm.example",  # no such CRM user
        f"contact,{uuid.uuid4()},u1@firm.example",  # no such contact
        f"journal,{ids[0]},u1@firm.example",  # no such entity
        "contact,not-a-uuid,u1@firm.example",  # malformed id
        f"contact,{ids[0]},u1 at firm",  # malformed address
        f"contacts,{ids[0]},U2@firm.example",  # the same link as an earlier row
        f"contact,{ids[0]}",  # a column short
    ]
    first_bad = good + 2
    path = tmp_path / "links.csv"
    path.write_text("\n".join(rows) + "\n")
    result = run_cli("records", "link", "--csv", str(path))
    assert result.code == 1, result.err
    assert f"linked {good}, 0 unchanged, 7 invalid row(s) skipped" in result.out
    errors = [line for line in result.err.splitlines() if line.startswith(str(path))]
    assert [int(e.split(":")[1]) for e in errors] == list(range(first_bad, first_bad + 7))
    for error, expected in zip(
        errors,
        [
            "no CRM user 'nobody@firm.example'",
            "no contact",
            "'journal' is not one of contact, calendar, task",
            "'not-a-uuid' is not a CRM id",
            "malformed address 'u1 at firm'",
            "duplicate of line 3",
            "expected 3 columns, found 2",
        ],
        strict=True,
    ):
        assert expected in error, error
    linked = fetch(cli_env, "SELECT count(*) FROM crm.record_users")[0][0]
    assert linked == good
    # Each link is change-captured for its user: the dispatcher queues exactly those mailboxes.
    logged = fetch(cli_env, "SELECT count(*) FROM crm.change_log WHERE op = 'link'")[0][0]
    assert logged == good
    again = run_cli("records", "link", "--csv", str(path))
    assert f"linked 0, {good} unchanged, 7 invalid row(s) skipped" in again.out

    unlink = tmp_path / "unlink.csv"
    unlink.write_text(f"entity,record_id,email\ncontact,{ids[0]},u1@firm.example\n"
                      f"contact,{ids[0]},u0@firm.example\n")  # fmt: skip
    gone = run_cli("records", "unlink", "--csv", str(unlink))
    assert gone.code == 1
    assert "unlinked 1, 0 unchanged, 1 invalid row(s) skipped" in gone.out
    assert f"{unlink}:3: u0@firm.example owns contact {ids[0]}" in gone.err


def test_link_unlink_and_show_one_record(run_cli: Cli, cli_env: str) -> None:
    _, ids = _seed(cli_env)
    made = run_cli("records", "link", "contact", ids[0], "u1@firm.example", "U2@firm.example")
    assert made.code == 0, made.err
    assert "linked 2, 0 unchanged" in made.out
    shown = run_cli("records", "show", "contacts", ids[0], "--json")
    users = json.loads(shown.out)["users"]
    assert [(u["email"], u["role"], u["holds"]) for u in users] == [
        ("u0@firm.example", "owner", True),
        ("u1@firm.example", "linked", True),
        ("u2@firm.example", "linked", True),
    ]
    assert run_cli("records", "unlink", "contact", ids[0], "u1@firm.example").code == 0
    owner = run_cli("records", "unlink", "contact", ids[0], "u0@firm.example")
    assert owner.code == 1 and "email: u0@firm.example owns contact" in owner.err
    nobody = run_cli("records", "link", "contact", ids[0], "x@firm.example")
    assert nobody.code == 2 and "email: no CRM user 'x@firm.example'" in nobody.err
    usage = run_cli("records", "link", "contact", ids[0])
    assert usage.code == 2 and "give ENTITY RECORD_ID EMAIL... or --csv FILE" in usage.err
    left = fetch(cli_env, "SELECT count(*) FROM crm.record_users")[0][0]
    assert left == 1


async def _call(client: Any, method: str, path: str, status: int, **kw: Any) -> Any:
    resp = await client.request(method, path, headers=AUTH, **kw)
    assert resp.status == status, await resp.text()
    return await resp.json(content_type=None)


async def test_the_api_links_unlinks_and_imports(pool: asyncpg.Pool) -> None:
    owner = await pool.fetchval("INSERT INTO crm.users (email) VALUES ('ann@firm.example') "
                                "RETURNING id")  # fmt: skip
    await pool.execute("INSERT INTO crm.users (email) VALUES ('ben@firm.example'), "
                       "('cat@firm.example')")  # fmt: skip
    rid = str(await pool.fetchval(
        "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Hopper') RETURNING id", owner
    ))  # fmt: skip
    users = f"/api/v1/records/contact/{rid}/users"
    async with api_client(pool) as c:
        put = await _call(c, "PUT", f"{users}/ben@firm.example", 200)
        assert [u["email"] for u in put["users"]] == ["ann@firm.example", "ben@firm.example"]
        missing = await _call(c, "PUT", f"/api/v1/records/contact/{uuid.uuid4()}/users/"
                              "ben@firm.example", 404)  # fmt: skip
        assert missing["field"] == "record_id"
        bad = await _call(c, "PUT", f"/api/v1/records/journal/{rid}/users/ben@firm.example", 400)
        assert bad["field"] == "entity"
        refused = await _call(c, "DELETE", f"{users}/ann@firm.example", 409)
        assert refused["field"] == "email"
        body = f"entity,record_id,email\ncontact,{rid},cat@firm.example\ntask,{rid},x@y.example\n"
        report = await _call(c, "POST", "/api/v1/records/link", 200, data=body)
        assert (report["changed"], report["unchanged"]) == (1, 0)
        assert [(e["line"], e["field"]) for e in report["invalid"]] == [(3, "email")]
        listed = await _call(c, "GET", users, 200)
        assert len(listed["users"]) == 3
        await _call(c, "DELETE", f"{users}/ben@firm.example", 200)
        drop = f"entity,record_id,email\ncontact,{rid},cat@firm.example\n"
        gone = await _call(c, "POST", "/api/v1/records/unlink", 200, data=drop)
        assert gone["changed"] == 1
        listed = await _call(c, "GET", users, 200)
        assert [u["email"] for u in listed["users"]] == ["ann@firm.example"]
