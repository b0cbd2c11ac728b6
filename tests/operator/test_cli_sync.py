from __future__ import annotations

import json

from tests.operator.conftest import Cli, add_server_args
from tests.operator.dbutil import fetch
from tests.operator.fakeworker import FakeWorker

BOXES = """crm_user_id,email,server,group
u1,alice@example.com,ex1,paris
u2,bob@example.com,ex1,london
u3,carol@example.com,ex1,
u4,dan@example.com,ex1,paris
"""


def _setup(run_cli: Cli) -> None:
    assert run_cli(*add_server_args("ex1")).code == 0
    assert run_cli("mailboxes", "import", "-", stdin=BOXES).code == 0
    assert run_cli("mailboxes", "disable", "dan@example.com").code == 0


def _jobs(url: str) -> list[tuple[object, ...]]:
    rows = fetch(
        url,
        "SELECT m.email, j.kind, j.priority, j.source, j.dry_run, j.status FROM sync.jobs j"
        " JOIN sync.mailboxes m ON m.id = j.mailbox_id ORDER BY m.email",
    )
    return [tuple(r) for r in rows]


def test_sync_requests_queue_operator_jobs(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    one = run_cli("sync", "--mailbox", "alice@example.com")
    assert one.code == 0, one.err
    assert "queued express for 1 mailbox(es): 1 new job(s)" in one.out
    assert _jobs(cli_env) == [("alice@example.com", "express", 10, "operator", False, "queued")]

    groups = run_cli("sync", "--group", "paris", "london", "--mode", "complete", "--json")
    body = json.loads(groups.out)
    assert [(j["mailbox"], j["coalesced"]) for j in body["jobs"]] == [
        ("alice@example.com", True),
        ("bob@example.com", False),
    ]
    assert body["skipped"] == [{"mailbox": "dan@example.com", "state": "disabled"}]
    # the queued express job of alice took the stronger kind
    assert [j[:2] for j in _jobs(cli_env)] == [
        ("alice@example.com", "complete"),
        ("bob@example.com", "complete"),
    ]
    server = run_cli("sync", "--server", "ex1", "--dry-run")
    # a dry run never joins a real pass queued for the same mailbox
    assert "for 3 mailbox(es): 3 new job(s), 0 merged" in server.out
    assert "skipped dan@example.com: disabled" in server.out
    assert ("carol@example.com", "express", 10, "operator", True, "queued") in _jobs(cli_env)


def test_sync_and_recover_refusals(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    disabled = run_cli("sync", "--mailbox", "dan@example.com")
    assert disabled.code == 1 and "dan@example.com is disabled; enable it first" in disabled.err
    assert run_cli("sync").code == 2
    both = run_cli("sync", "--mailbox", "alice@example.com", "--server", "ex1")
    assert both.code == 2 and "target:" in both.err
    assert run_cli("sync", "--server", "nowhere").code == 2
    assert run_cli("sync", "--mailbox", "alice@example.com", "--mode", "recover").code == 2
    assert run_cli("recover", "dan@example.com").code == 1
    assert _jobs(cli_env) == []
    recover = run_cli("recover", "alice@example.com", "--dry-run")
    assert recover.code == 0 and "queued recover (dry run)" in recover.out
    assert _jobs(cli_env) == [("alice@example.com", "recover", 10, "operator", True, "queued")]


def test_wait_follows_the_passes_and_summarizes(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    with FakeWorker(cli_env):
        result = run_cli("sync", "--group", "paris", "--group", "london", "--wait")
    assert result.code == 0, result.err
    # not a terminal: plain progress lines on stderr, no carriage returns
    assert "2/2 express pass(es) finished" in result.err and "\r" not in result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:4] == ["MAILBOX", "KIND", "OUTCOME", "DURATION"]
    assert lines[1].split()[:5] == ["alice@example.com", "express", "ok", "2.0s", "3"]
    assert lines[-1] == "2 pass(es): 2 ok; 6 item(s) written"

    runs = json.loads(
        run_cli("runs", "--mailbox", "alice@example.com", "--since", "1h", "--json").out
    )
    assert [(r["mailbox"], r["outcome"], r["requests"]) for r in runs] == [
        ("alice@example.com", "ok", 7)
    ]
    table = run_cli("runs")
    assert table.code == 0 and table.out.splitlines()[-1] == "2 pass(es): 2 ok; 6 item(s) written"


def test_wait_fails_on_failed_passes_and_on_timeout(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    with FakeWorker(cli_env, outcome="failed", delay=0.0):
        failed = run_cli("recover", "bob@example.com", "--wait", "--json")
    assert failed.code == 1
    assert json.loads(failed.out)["runs"][0]["outcome"] == "failed"
    stuck = run_cli("sync", "--mailbox", "alice@example.com", "--wait", "--timeout", "1s")
    assert stuck.code == 1 and "1 pass(es) still unfinished after 1s" in stuck.out
    assert run_cli("sync", "--mailbox", "alice@example.com", "--wait", "--timeout", "x").code == 2


def test_status_and_runs_input(run_cli: Cli, cli_env: str) -> None:
    _setup(run_cli)
    fetch(
        cli_env,
        "INSERT INTO sync.engines (name, roles) VALUES ('a', 'api,engine,dispatcher'),"
        " ('b', 'engine')",
    )
    with FakeWorker(cli_env, delay=0.0):
        assert run_cli("sync", "--server", "ex1", "--wait").code == 0
    assert run_cli("sync", "--mailbox", "alice@example.com").code == 0
    status = json.loads(run_cli("status", "--json").out)
    assert status["mailboxes"] == {
        "active": 3,
        "disabled": 1,
        "quarantined": 0,
        "needs_recovery": 0,
        "moved": 0,
    }
    assert status["queue"]["queued"] == 1 and status["queue"]["running"] == 0
    assert status["last_hour"]["passes"] == {"ok": 3}
    assert status["last_hour"]["requests"] == 21 and status["last_hour"]["throttled"] == 3
    assert {
        (i["entity"], i["direction"], i["operation"], i["n"]) for i in status["last_hour"]["items"]
    } == {
        ("contact", "crm_to_exchange", "create", 6),
        ("contact", "exchange_to_crm", "update", 3),
    }
    assert [e["name"] for e in status["engines"]] == ["a", "b"]
    assert status["dispatchers"] == ["a"] and status["leader"]["name"] == "none"
    text = run_cli("status").out
    assert "mailboxes:   3 active, 1 disabled, 0 quarantined, 0 needs_recovery" in text
    assert "3 throttled answer(s)" in text and "leader:      none" in text
    fetch(
        cli_env,
        "UPDATE sync.dispatcher SET leader = 'a', leader_since = now(), heartbeat_at = now()",
    )
    assert json.loads(run_cli("status", "--json").out)["leader"]["name"] == "a"
    assert "leader:      a (since " in run_cli("status").out
    fetch(cli_env, "UPDATE sync.dispatcher SET heartbeat_at = now() - interval '5 minutes'")
    stale = json.loads(run_cli("status", "--json").out)["leader"]
    assert stale["name"] == "none" and stale["last"] == "a"
    bad = run_cli("runs", "--since", "yesterday")
    assert bad.code == 2 and "since:" in bad.err
