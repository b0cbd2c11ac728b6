from __future__ import annotations

import json
from pathlib import Path

from tests.operator.conftest import Cli, add_server_args
from tests.operator.dbutil import fetch, table_dump

GOOD = """crm_user_id,email,server,group,contacts,calendar,tasks
u1,Alice@Example.com,ex1,paris,two-way,crm-to-exchange,off
u2,bob@example.com,ex1,,,,
u3,carol@example.com,ex1,london,two-way,two-way,two-way
"""

MIXED = """crm_user_id,email,server,group,contacts
u1,alice@example.com,ex1,paris,two-way
u2,not-an-address,ex1,,two-way
u3,carol@example.com,nowhere,,two-way
u4,dave@example.com,ex1,,sideways
u5,erin@example.com,ex1
u1,alice2@example.com,ex1,,two-way
u6,frank@example.com,ex1,berlin,exchange-to-crm
"""


def _setup(run_cli: Cli) -> None:
    assert run_cli(*add_server_args("ex1")).code == 0


def test_import_valid_rows_and_report_invalid_ones_by_line(
    run_cli: Cli, cli_env: str, tmp_path: Path
) -> None:
    _setup(run_cli)
    csv_file = tmp_path / "boxes.csv"
    csv_file.write_text(MIXED)
    result = run_cli("mailboxes", "import", str(csv_file))
    assert result.code == 1  # invalid rows make the command fail, the valid ones are in
    assert "2 new, 0 updated, 5 invalid row(s) skipped" in result.out
    errors = [line for line in result.err.splitlines() if line.startswith(str(csv_file))]
    assert [e.split(":")[1] for e in errors] == ["3", "4", "5", "6", "7"]
    assert "malformed address 'not-an-address'" in errors[0]
    assert "unknown server 'nowhere'" in errors[1]
    assert "'sideways' is not one of" in errors[2]
    assert "expected 5 columns, found 3" in errors[3]
    assert "duplicate of line 2" in errors[4]
    rows = fetch(
        cli_env,
        "SELECT crm_user_id, email, server_group, contacts_mode FROM sync.mailboxes ORDER BY 1",
    )
    assert [tuple(r) for r in rows] == [
        ("u1", "alice@example.com", "paris", "two-way"),
        ("u6", "frank@example.com", "berlin", "exchange-to-crm"),
    ]


def test_import_is_an_idempotent_upsert(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    first = run_cli("mailboxes", "import", "-", "--json", stdin=GOOD)
    assert first.code == 0, first.err
    assert json.loads(first.out) == {"inserted": 3, "updated": 0, "invalid": []}
    before = fetch(
        cli_env,
        "SELECT id, crm_user_id, email, calendar_mode, tasks_mode FROM sync.mailboxes ORDER BY id",
    )
    again = run_cli("mailboxes", "import", "-", "--json", stdin=GOOD)
    assert json.loads(again.out) == {"inserted": 0, "updated": 3, "invalid": []}
    after = fetch(
        cli_env,
        "SELECT id, crm_user_id, email, calendar_mode, tasks_mode FROM sync.mailboxes ORDER BY id",
    )
    assert after == before
    assert tuple(after[0])[2:] == ("alice@example.com", "crm-to-exchange", "off")


def test_unusable_files_exit_2_and_write_nothing(
    run_cli: Cli, cli_env: str, tmp_path: Path
) -> None:
    _setup(run_cli)
    before = table_dump(cli_env)
    cases = {
        "email,server\nx@example.com,ex1\n": "header: missing column(s): crm_user_id",
        "crm_user_id,email,server,colour\n": "header: unknown column(s): colour",
        "": "header: the file is empty",
    }
    for text, message in cases.items():
        result = run_cli("mailboxes", "import", "-", stdin=text)
        assert result.code == 2 and message in result.err, result
    missing = run_cli("mailboxes", "import", str(tmp_path / "absent.csv"))
    assert missing.code == 2 and "cannot read" in missing.err
    assert table_dump(cli_env) == before


def test_an_address_owned_by_another_user_is_refused(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    assert run_cli("mailboxes", "import", "-", stdin=GOOD).code == 0
    clash = "crm_user_id,email,server\nu9,bob@example.com,ex1\nu10,zoe@example.com,ex1\n"
    result = run_cli("mailboxes", "import", "-", stdin=clash)
    assert result.code == 1 and "-:2: address already belongs to CRM user 'u2'" in result.err
    # two users swapping addresses cannot be one import: both rows are refused, nothing moves
    swap = "crm_user_id,email,server\nu1,carol@example.com,ex1\nu3,alice@example.com,ex1\n"
    swapped = run_cli("mailboxes", "import", "-", stdin=swap)
    assert swapped.code == 1 and "0 new, 0 updated, 2 invalid" in swapped.out
    assert "-:3: address already belongs to CRM user 'u1'" in swapped.err
    emails = [r["email"] for r in fetch(cli_env, "SELECT email FROM sync.mailboxes ORDER BY id")]
    assert emails[-1] == "zoe@example.com" and emails.count("bob@example.com") == 1


def test_list_show_enable_disable_set(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    assert run_cli("mailboxes", "import", "-", stdin=GOOD).code == 0
    listed = run_cli("mailboxes", "list")
    lines = listed.out.splitlines()
    assert lines[0].split()[:5] == ["EMAIL", "CRM_USER_ID", "SERVER", "GROUP", "STATE"]
    assert len(lines) == 4
    paris = json.loads(run_cli("mailboxes", "list", "--group", "paris", "--json").out)
    assert [m["email"] for m in paris] == ["alice@example.com"]

    disabled = run_cli("mailboxes", "disable", "bob@example.com", "--reason", "left the firm")
    assert disabled.code == 0 and "is disabled" in disabled.out
    only = json.loads(run_cli("mailboxes", "list", "--state", "disabled", "--json").out)
    assert [(m["email"], m["reason"]) for m in only] == [("bob@example.com", "left the firm")]
    assert run_cli("mailboxes", "enable", "BOB@example.com").code == 0
    (row,) = fetch(cli_env, "SELECT state, state_reason FROM sync.mailboxes WHERE crm_user_id='u2'")
    assert tuple(row) == ("active", None)

    changed = run_cli("mailboxes", "set", "bob@example.com", "--group", "rome", "--tasks", "off")
    assert changed.code == 0, changed.err
    assert "group rome" in changed.out and "tasks off" in changed.out
    assert run_cli("mailboxes", "set", "bob@example.com", "--no-group").code == 0
    (row,) = fetch(
        cli_env,
        "SELECT server_group, tasks_mode, contacts_mode FROM sync.mailboxes WHERE crm_user_id='u2'",
    )
    assert tuple(row) == (None, "off", "two-way")

    shown = run_cli("mailboxes", "show", "alice@example.com")
    assert shown.code == 0
    assert "state:          active" in shown.out
    assert "calendar crm-to-exchange" in shown.out and "last passes:" in shown.out
    detail = json.loads(run_cli("mailboxes", "show", "alice@example.com", "--json").out)
    assert detail["items"] == {"contact": 0, "appointment": 0, "task": 0}
    assert detail["last_runs"] == [] and detail["open_job"] is None

    # errors
    unknown = run_cli("mailboxes", "show", "nobody@example.com")
    assert unknown.code == 2 and "no mailbox 'nobody@example.com'" in unknown.err
    malformed = run_cli("mailboxes", "enable", "nobody")
    assert malformed.code == 2 and "mailbox: malformed address" in malformed.err
    bad_mode = run_cli("mailboxes", "set", "x@example.com", "--contacts", "both")
    assert bad_mode.code == 2 and "invalid choice" in bad_mode.err
    bad_state = run_cli("mailboxes", "list", "--state", "asleep")
    assert bad_state.code == 2
