from __future__ import annotations

import asyncio
import io
import json
from datetime import time, timedelta

import asyncpg
import pytest

from sync_service.operator.output import Progress
from sync_service.process import main as cli
from tests.operator.conftest import Cli, add_server_args


async def _server_rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch("SELECT * FROM sync.servers ORDER BY name")
    finally:
        await conn.close()


def servers(url: str) -> list[asyncpg.Record]:
    return asyncio.run(_server_rows(url))


def test_add_list_update_server(run_cli: Cli, cli_env: str) -> None:
    added = run_cli(*add_server_args("ex1", "--timezone", "Europe/Paris", "--complete-at", "03:30"))
    assert added.code == 0, added.err
    assert "server ex1 added" in added.out
    assert "level=info" not in added.err  # the result is the output; INFO events stay quiet
    (row,) = servers(cli_env)
    assert row["auth_kind"] == "basic" and row["secret_env"] == "EXCHANGE_EX1_PASSWORD"
    assert row["time_zone"] == "Europe/Paris" and row["complete_at"] == time(3, 30)

    listed = run_cli("servers", "list")
    header, line = listed.out.splitlines()
    assert header.split() == [
        "NAME",
        "BACKEND",
        "URL",
        "AUTH",
        "TIMEZONE",
        "EXPRESS",
        "COMPLETE",
        "CONCURRENCY",
    ]
    assert line.split()[0:2] == ["ex1", "ews"] and "03:30" in line
    # columns are aligned: every value starts where its header starts
    assert line.index("ews") == header.index("BACKEND")

    updated = run_cli(
        "servers", "update", "ex1", "--express-interval", "5m", "--rate", "20", "--json"
    )
    assert updated.code == 0, updated.err
    body = json.loads(updated.out)
    assert body["express_interval"] == "5m" and body["rate_per_second"] == 20.0
    (row,) = servers(cli_env)
    assert row["express_interval"] == timedelta(minutes=5)
    assert row["time_zone"] == "Europe/Paris"  # untouched settings are kept

    switched = run_cli("servers", "update", "ex1", "--password-file", "/run/secrets/ex1")
    assert switched.code == 0, switched.err
    (row,) = servers(cli_env)
    assert (row["secret_env"], row["secret_file"]) == (None, "/run/secrets/ex1")
    typo = run_cli("servers", "update", "ex1", "--password-env", "S3cret!pass")
    assert typo.code == 2 and "S3cret!pass" not in typo.err + typo.out

    as_json = json.loads(run_cli("servers", "list", "--json").out)
    assert [s["name"] for s in as_json] == ["ex1"]


def test_oauth_server_stores_only_where_the_secret_is(run_cli: Cli, cli_env: str) -> None:
    result = run_cli(
        "servers",
        "add",
        "online",
        "--backend",
        "graph",
        "--url",
        "https://graph.microsoft.com",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--client-id",
        "1234",
        "--secret-file",
        "/run/secrets/graph",
    )
    assert result.code == 0, result.err
    (row,) = servers(cli_env)
    assert row["auth_kind"] == "oauth" and row["secret_file"] == "/run/secrets/graph"
    assert row["secret_env"] is None and row["username"] is None


def test_bad_server_input_exits_2_naming_the_field(run_cli: Cli, cli_env: str) -> None:
    cases = [
        (add_server_args("ex1", "--timezone", "Mars/Olympus"), "time_zone"),
        (add_server_args("ex1", "--complete-at", "25:00"), "complete_at"),
        (add_server_args("ex1", "--express-interval", "soon"), "express_interval"),
        (add_server_args("ex1", "--max-concurrency", "0"), "max_concurrency"),
        (add_server_args("bad name"), "name"),
        (
            [
                "servers",
                "add",
                "ex1",
                "--backend",
                "ews",
                "--url",
                "ftp://x",
                "--username",
                "u",
                "--password-env",
                "P",
            ],
            "url",
        ),
        (
            [
                "servers",
                "add",
                "ex1",
                "--backend",
                "ews",
                "--url",
                "https://x.example",
                "--password-env",
                "P",
            ],
            "username",
        ),
        (
            [
                "servers",
                "add",
                "ex1",
                "--backend",
                "ews",
                "--url",
                "https://x.example",
                "--username",
                "u",
            ],
            "secret_env",
        ),
        (
            [
                "servers",
                "add",
                "g",
                "--backend",
                "graph",
                "--url",
                "https://graph.example",
                "--auth",
                "basic",
                "--username",
                "u",
                "--password-env",
                "P",
            ],
            "auth_kind",
        ),
    ]
    for args, field in cases:
        result = run_cli(*args)
        assert result.code == 2, (args, result)
        assert result.err.startswith(f"sync-service: {field}:"), (args, result.err)
    assert servers(cli_env) == []


def test_usage_errors_and_conflicts(run_cli: Cli, cli_env: str) -> None:
    assert run_cli("servers", "add", "ex1", "--backend", "imap", "--url", "https://x").code == 2
    assert run_cli(*add_server_args("ex1")).code == 0
    duplicate = run_cli(*add_server_args("ex1"))
    assert duplicate.code == 1 and "already exists" in duplicate.err
    unknown = run_cli("servers", "update", "nope", "--rate", "3")
    assert unknown.code == 2 and "no server named 'nope'" in unknown.err
    both = run_cli(*add_server_args("ex2", "--password-file", "/x"))
    assert both.code == 2 and "not allowed with" in both.err
    assert len(servers(cli_env)) == 1
    assert (
        run_cli(
            "mailboxes", "import", "-", stdin="crm_user_id,email,server\nu1,a@b.example,ex1\n"
        ).code
        == 0
    )
    busy = run_cli("servers", "remove", "ex1")
    assert busy.code == 1 and "still has 1 mailbox(es)" in busy.err
    assert run_cli("servers", "remove", "nope").code == 2


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--help needs no database: it answers before any connection is made."""
    commands = [
        [], ["run"], ["migrate"], ["servers"], ["servers", "add"], ["servers", "list"],
        ["servers", "update"], ["servers", "remove"], ["servers", "test"], ["mailboxes"],
        ["mailboxes", "import"],
        ["mailboxes", "list"], ["mailboxes", "show"], ["mailboxes", "enable"],
        ["mailboxes", "disable"], ["mailboxes", "set"], ["sync"], ["recover"], ["runs"],
        ["status"],
    ]  # fmt: skip
    for words in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*words, "--help"])
        assert exit_info.value.code == 0, words
        assert capsys.readouterr().out.startswith("usage: sync-service"), words


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress(4, "passes", stream)
        for done in (0, 1, 1, 4):
            progress.update(done)
        progress.close()
    assert pipe.getvalue() == "0/4 passes\n1/4 passes\n4/4 passes\n"
    frames = tty.getvalue().split("\r")[1:]
    assert len(frames) == 3 and frames[1].startswith("[#######.......")
    assert frames[2] == "[" + "#" * 30 + "] 4/4 passes\n"


async def test_new_servers_take_the_deployment_schedule_defaults(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYNC_DATABASE_URL", db_url)
    monkeypatch.setenv("SYNC_EXPRESS_INTERVAL", "5m")
    monkeypatch.setenv("SYNC_COMPLETE_AT", "03:30")
    code = await asyncio.to_thread(
        cli.main,
        [
            "servers",
            "add",
            "defaults",
            "--backend",
            "ews",
            "--url",
            "https://ex.example/EWS/Exchange.asmx",
            "--username",
            "svc",
            "--password-env",
            "EXCHANGE_X_PW",
        ],
    )
    assert code == 0, capsys.readouterr().err
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT express_interval, complete_at FROM sync.servers WHERE name = 'defaults'"
        )
    finally:
        await conn.close()
    assert str(row["express_interval"]) == "0:05:00" and str(row["complete_at"]) == "03:30:00"


def graph_server_args(name: str, *extra: str) -> list[str]:
    return [
        "servers", "add", name, "--backend", "graph", "--url", "https://graph.microsoft.us/v1.0",
        "--tenant", "contoso.onmicrosoft.us", "--client-id", "app-1", *extra,
    ]  # fmt: skip


def test_scope_and_certificate_round_trip_through_cli_and_db(run_cli: Cli, cli_env: str) -> None:
    added = run_cli(
        *graph_server_args(
            "gov", "--scope", "https://graph.microsoft.us/.default",
            "--certificate-file", "/run/secrets/sync-app.pem",
        )
    )  # fmt: skip
    assert added.code == 0, added.err
    (row,) = servers(cli_env)
    assert row["scope"] == "https://graph.microsoft.us/.default"
    assert row["certificate_file"] == "/run/secrets/sync-app.pem"
    assert row["secret_env"] is None and row["secret_file"] is None
    shown = run_cli("servers", "show", "gov")
    assert shown.code == 0, shown.err
    assert "scope:" in shown.out and "https://graph.microsoft.us/.default" in shown.out
    assert "/run/secrets/sync-app.pem" in shown.out
    as_json = json.loads(run_cli("servers", "show", "gov", "--json").out)
    assert as_json["scope"] == "https://graph.microsoft.us/.default"
    (listed,) = json.loads(run_cli("servers", "list", "--json").out)
    assert listed["certificate_file"] == "/run/secrets/sync-app.pem"

    # A secret replaces the certificate, and back; the scope is kept.
    assert run_cli("servers", "update", "gov", "--secret-env", "EXCHANGE_GOV_SECRET").code == 0
    (row,) = servers(cli_env)
    assert (row["secret_env"], row["certificate_file"]) == ("EXCHANGE_GOV_SECRET", None)
    assert row["scope"] == "https://graph.microsoft.us/.default"
    moved = run_cli("servers", "update", "gov", "--certificate-file", "/run/secrets/app-2.pem")
    assert moved.code == 0, moved.err
    (row,) = servers(cli_env)
    assert (row["secret_env"], row["certificate_file"]) == (None, "/run/secrets/app-2.pem")
    assert run_cli("servers", "show", "nope").code == 2


def test_bad_scope_and_certificate_input_names_the_field(run_cli: Cli, cli_env: str) -> None:
    cases = [
        (graph_server_args("g", "--secret-env", "S", "--scope", "https://graph.microsoft.us"),
         "scope"),
        (graph_server_args("g", "--secret-env", "S", "--scope", "http://graph.microsoft.us/.default"),
         "scope"),
        (graph_server_args("g", "--secret-env", "S", "--scope", "graph/.default"), "scope"),
        (graph_server_args("g", "--certificate-file", " "), "certificate_file"),
        (add_server_args("e", "--scope", "https://outlook.office365.us/.default"), "scope"),
        (graph_server_args("g"), "secret_env"),
    ]  # fmt: skip
    for args, field in cases:
        result = run_cli(*args)
        assert result.code == 2, (args, result)
        assert result.err.startswith(f"sync-service: {field}:"), (args, result.err)
    both = run_cli(*graph_server_args("g", "--secret-env", "S", "--certificate-file", "/x.pem"))
    assert both.code == 2 and "not allowed with" in both.err
    assert servers(cli_env) == []


def test_servers_test_reports_an_unreadable_certificate_file(run_cli: Cli, cli_env: str) -> None:
    added = run_cli(*graph_server_args("g", "--certificate-file", "/run/secrets/missing.pem"))
    assert added.code == 0, added.err
    csv = "crm_user_id,email,server\nu1,alice@gov.example,g\n"
    assert run_cli("mailboxes", "import", "-", stdin=csv).code == 0
    tested = run_cli("servers", "test", "g", "--json")
    assert tested.code == 1
    steps = {s["name"]: s for s in json.loads(tested.out)["steps"]}
    assert steps["connect"]["status"] == "failed"
    assert "certificate_file: /run/secrets/missing.pem" in steps["connect"]["detail"]
    assert steps["authenticate"]["status"] == "skipped"


def test_show_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["servers", "show", "--help"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out
