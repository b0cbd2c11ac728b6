"""`sync-service mailboxes move`: one mailbox or a CSV of them, against a simulator over HTTP.

The links' side of a move is tests/e2e/test_mailbox_move.py; here the command: its input,
its output, its exit codes, and the mailbox served from the new server afterwards."""

from __future__ import annotations

import json

import pytest

from ews_client.simulator.testing import RunningSimulator
from sync_service.runtime.moved import moved_reason
from tests.operator.conftest import Cli
from tests.operator.dbutil import fetch


def _two_servers(run_cli: Cli, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two servers reaching the same simulator: where a mailbox was, where it is now."""
    monkeypatch.setenv("EXCHANGE_SIM_PASSWORD", sim.password)
    for name in ("onprem", "online"):
        args = ["servers", "add", name, "--backend", "ews", "--url", sim.ews_url]
        password = ["--password-env", "EXCHANGE_SIM_PASSWORD"]
        assert run_cli(*args, "--username", sim.username, *password).code == 0
    csv = "crm_user_id,email,server\nu1,alice@sim.example,onprem\nu2,bob@sim.example,onprem\n"
    assert run_cli("mailboxes", "import", "-", stdin=csv).code == 0


def _server_of(cli_env: str, email: str) -> str:
    rows = fetch(
        cli_env,
        "SELECT s.name FROM sync.mailboxes m JOIN sync.servers s ON s.id = m.server_id "
        f"WHERE m.email = '{email}'",
    )
    return str(rows[0][0])


def test_move_one_mailbox_then_refuse_the_same_move_again(
    run_cli: Cli, cli_env: str, simulator_thread: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_servers(run_cli, simulator_thread, monkeypatch)
    result = run_cli("mailboxes", "move", "alice@sim.example", "--to", "online")
    assert result.code == 0, result.err
    assert result.out.startswith("alice@sim.example: moved from onprem to online, links kept")
    assert _server_of(cli_env, "alice@sim.example") == "online"
    assert _server_of(cli_env, "bob@sim.example") == "onprem"
    again = run_cli("mailboxes", "move", "alice@sim.example", "--to", "online", "--json")
    assert again.code == 1
    [answer] = json.loads(again.out)
    assert answer["moved"] is False and "already served by online" in answer["error"]


def test_move_from_csv_reports_each_row(
    run_cli: Cli, cli_env: str, simulator_thread: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_servers(run_cli, simulator_thread, monkeypatch)
    csv = "email,server\nalice@sim.example,online\nnobody@sim.example,online\nbob@sim.example,x\n"
    result = run_cli("mailboxes", "move", "--csv", "-", stdin=csv)
    assert result.code == 1
    assert "alice@sim.example: moved from onprem to online" in result.out
    assert "nobody@sim.example: not moved to online: no mailbox 'nobody@sim.example'" in result.err
    assert "bob@sim.example: not moved to x: no server 'x'" in result.err
    assert _server_of(cli_env, "alice@sim.example") == "online"
    assert _server_of(cli_env, "bob@sim.example") == "onprem"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["alice@sim.example"], None, "to: give SMTP --to SERVER, or --csv FILE"),
        (["--to", "online"], None, "to: give SMTP --to SERVER, or --csv FILE"),
        (["alice@sim.example", "--csv", "-"], "email,server\n", "csv: give either"),
        (["--csv", "-"], "address,server\na@x,online\n", "csv: the first line must be"),
        (["--csv", "-"], "email,server\na@x\n", "csv: line 2: expected email,server"),
        (["--csv", "-"], "email,server\n", "csv: no mailbox to move"),
    ],
)
def test_bad_input_is_a_usage_error(
    run_cli: Cli, args: list[str], stdin: str | None, message: str
) -> None:
    result = run_cli("mailboxes", "move", *args, stdin=stdin)
    assert result.code == 2 and message in result.err, result.err


def test_a_moved_mailbox_is_listed_with_its_command_and_made_active_by_the_move(
    run_cli: Cli, cli_env: str, simulator_thread: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an operator sees of a mailbox the service found moved away (the state a pass
    gives it: tests/e2e/test_mailbox_move.py), and the two ways out of it."""
    _two_servers(run_cli, simulator_thread, monkeypatch)
    for email in ("alice@sim.example", "bob@sim.example"):
        reason = moved_reason(
            email, "onprem", RuntimeError("No mailbox with such guid."), ["online"]
        )
        fetch(cli_env, "UPDATE sync.mailboxes SET state = 'moved', state_reason = $2 "
              "WHERE email = $1", email, reason)  # fmt: skip
    listed = run_cli("mailboxes", "list", "--state", "moved")
    rows = [line.split(maxsplit=8) for line in listed.out.splitlines()[1:]]
    assert listed.code == 0 and [(r[0], r[4]) for r in rows] == [
        ("alice@sim.example", "moved"),
        ("bob@sim.example", "moved"),
    ], listed.out
    assert rows[0][8].endswith("run: sync-service mailboxes move alice@sim.example --to online")
    assert run_cli("mailboxes", "list", "--state", "disabled", "--json").out.strip() == "[]"
    shown = run_cli("mailboxes", "show", "alice@sim.example").out
    assert "state:          moved" in shown
    assert "reason:         moved: onprem no longer holds this mailbox" in shown
    status = json.loads(run_cli("status", "--json").out)["mailboxes"]
    assert (status["moved"], status["disabled"]) == (2, 0)

    assert run_cli("mailboxes", "move", "alice@sim.example", "--to", "online").code == 0
    assert run_cli("mailboxes", "enable", "bob@sim.example").out.strip() == (
        "mailbox bob@sim.example is active"
    )
    rows = fetch(cli_env, "SELECT email, state, state_reason FROM sync.mailboxes ORDER BY email")
    assert [tuple(r) for r in rows] == [
        ("alice@sim.example", "active", None),
        ("bob@sim.example", "active", None),
    ]
    assert _server_of(cli_env, "alice@sim.example") == "online"
