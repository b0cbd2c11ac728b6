"""`mailboxes folder-link`: 1,000 links imported from CSV in one command, the invalid rows
reported by line and skipped; set, show and clear of one link (real PostgreSQL, in-process
CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.operator.conftest import Cli, add_server_args
from tests.operator.dbutil import fetch

COUNT = 1000


def _mailboxes(run_cli: Cli, tmp_path: Path) -> None:
    assert run_cli(*add_server_args("ex1")).code == 0
    lines = ["crm_user_id,email,server"] + [f"u{n},user{n}@example.com,ex1" for n in range(COUNT)]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("\n".join(lines) + "\n")
    assert run_cli("mailboxes", "import", str(boxes)).code == 0


def test_a_thousand_links_in_one_command_invalid_rows_by_line(
    run_cli: Cli, cli_env: str, tmp_path: Path
) -> None:
    _mailboxes(run_cli, tmp_path)
    rows = ["email,entity,folder,create"]
    rows += [f"user{n}@example.com,contacts,Contacts/CRM,{n % 2}" for n in range(COUNT)]
    rows += [
        "nobody@example.com,contacts,Contacts/CRM,",  # line 1002: no such mailbox
        "user1@example.com,journal,Contacts/CRM,",  # 1003: no such entity
        "user2@example.com,tasks,Tasks//CRM,",  # 1004: an empty path part
        "user3@example.com,contacts,id:,",  # 1005: an id of nothing
        "user4@example.com,contacts,Contacts/Other,",  # 1006: the same link twice
        "user5@example.com,calendar,id:AAMkAD=,maybe",  # 1007: create neither true nor false
    ]
    links = tmp_path / "links.csv"
    links.write_text("\n".join(rows) + "\n")
    result = run_cli("mailboxes", "folder-link", "import", str(links))
    assert result.code == 1
    assert "linked 1000 folder(s), 0 unchanged, 6 invalid row(s) skipped" in result.out
    errors = [line for line in result.err.splitlines() if line.startswith(str(links))]
    assert [e.split(":")[1] for e in errors] == ["1002", "1003", "1004", "1005", "1006", "1007"]
    assert "no mailbox 'nobody@example.com'" in errors[0]
    assert "'journal' is not one of contacts, calendar, tasks" in errors[1]
    assert "has an empty part" in errors[2]
    assert "names nothing after id:" in errors[3]
    assert "duplicate of line 6" in errors[4]
    assert "'maybe' is not true or false" in errors[5]
    stored = fetch(
        cli_env,
        "SELECT choice_by, choice_value, count(*), sum(create_missing::int), bool_and(rematch) "
        "FROM sync.folder_links GROUP BY 1, 2",
    )
    assert [tuple(r) for r in stored] == [("path", "Contacts/CRM", COUNT, COUNT // 2, True)]
    again = run_cli("mailboxes", "folder-link", "import", str(links))
    assert "linked 0 folder(s), 1000 unchanged" in again.out  # nothing to reset


def test_set_show_and_clear(run_cli: Cli, cli_env: str, tmp_path: Path) -> None:
    _mailboxes(run_cli, tmp_path)
    box = "user7@example.com"
    put = run_cli(
        "mailboxes", "folder-link", "set", box, "tasks", "Tasks/CRM", "--create", "--json"
    )
    assert put.code == 0
    [link] = json.loads(put.out)
    assert (link["folder"], link["state"], link["create"]) == ("path:Tasks/CRM", "pending", True)
    shown = run_cli("mailboxes", "folder-link", "show", box)
    assert "path:Tasks/CRM" in shown.out and "pending" in shown.out
    assert "default" in shown.out  # contacts and calendar
    bad = run_cli("mailboxes", "folder-link", "set", "nobody@example.com", "tasks", "Tasks/CRM")
    assert bad.code != 0 and "no mailbox 'nobody@example.com'" in bad.err
    cleared = run_cli("mailboxes", "folder-link", "clear", box, "tasks", "--json")
    assert json.loads(cleared.out)[0]["folder"] == "default"
