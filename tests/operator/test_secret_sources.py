"""Secret sources on the deployment's allow-list (SYNC_SECRET_ENV_PREFIX, SYNC_SECRET_DIR):
refused when a server is added or updated (API and CLI) and again when it is used, so that a
row written by SQL cannot send the API token, the database URL or /proc/self/environ anywhere.
The "anywhere" here is a plain aiohttp listener on 127.0.0.1 that records every request."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sync_service.config import ConfigError, Settings, load_settings
from sync_service.crm.postgres import PostgresCrm
from sync_service.db.queue import JobQueue, PassKind
from sync_service.db.store import NewServer, Server, Store
from sync_service.runtime.backends import Backends
from sync_service.runtime.runner import PassRunner
from sync_service.runtime.worker import Done
from tests.operator.apiclient import AUTH, SERVER, TOKEN, api_client
from tests.operator.conftest import Cli, add_server_args

LEAK = "leak-canary-7d1f"  # the value of every variable a server must not read
ALLOWED_ENV = "EXCHANGE_EX1_PASSWORD"
ALLOWED_SECRET = "allowed-secret-93b2"
REFUSED_ENVS = ("SYNC_API_TOKEN", "SYNC_DATABASE_URL", "sync_api_token", "PATH", "EXCHANGE_")
EMAIL = "alice@ex1.example"


@dataclass(frozen=True, slots=True)
class Secrets:
    """A secret directory with one secret in it, and a secret outside it that a symlink in
    the directory and a `..` path both lead to."""

    directory: Path
    inside: Path
    outside: Path

    def refused_files(self) -> list[str]:
        return [
            "/proc/self/environ",
            "/etc/shadow",
            "/etc/no-such-file",
            f"{self.directory}/../outside/secret.txt",
            str(self.directory / "escape"),
            "secret.txt",  # relative: no working directory decides what is read
        ]


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Secrets]:
    directory = tmp_path / "secrets"
    directory.mkdir()
    inside = directory / "ex1.pw"
    inside.write_text(ALLOWED_SECRET + "\n")
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_text(LEAK)
    (directory / "escape").symlink_to(outside)
    # The API token a hostile server would name holds the canary for the whole test (the
    # settings of each test are loaded with their own token).
    monkeypatch.setenv("SYNC_API_TOKEN", LEAK)
    monkeypatch.setenv(ALLOWED_ENV, ALLOWED_SECRET)
    yield Secrets(directory, inside, outside)


def _leak_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refused variable holds the canary, once the test's settings are loaded (the
    lower-case and database names would be read as settings by load_settings)."""
    for name in ("SYNC_API_TOKEN", "sync_api_token", "SYNC_DATABASE_URL"):
        monkeypatch.setenv(name, LEAK)


@dataclass
class Listener:
    """Every request that reached the listener, with its headers and body."""

    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def texts(self) -> str:
        return repr(self.seen)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    record = Listener("")

    async def anything(request: web.Request) -> web.Response:
        record.seen.append(
            {"path": request.path, "headers": dict(request.headers), "body": await request.text()}
        )
        return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    async with TestServer(app, host="127.0.0.1") as server:
        record.url = str(server.make_url("/EWS/Exchange.asmx"))
        yield record


def _settings(secret_dir: Path) -> Settings:
    """The deployment's settings with `secret_dir`, whatever SYNC_ the environment holds."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.upper().startswith("SYNC_")}
    os.environ.update(SYNC_SECRET_DIR=str(secret_dir), SYNC_API_TOKEN=TOKEN)
    try:
        return load_settings()
    finally:
        for key in ("SYNC_SECRET_DIR", "SYNC_API_TOKEN"):
            os.environ.pop(key)
        os.environ.update(saved)


def _api_env(secrets: Secrets) -> dict[str, str]:
    return {"SYNC_API_TOKEN": TOKEN, "SYNC_SECRET_DIR": str(secrets.directory)}


def _cases(secrets: Secrets) -> list[tuple[str, str, dict[str, Any]]]:
    """(field, refused value, the settings that name it) for every kind of secret source."""
    oauth = {"backend": "graph", "tenant": "t", "client_id": "app", "secret_env": None}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("secret_env", name, {"secret_env": name}) for name in REFUSED_ENVS
    ]
    for path in secrets.refused_files():
        cases.append(("secret_file", path, {"secret_env": None, "secret_file": path}))
        cases.append(("ca_file", path, {"ca_file": path}))
        cases.append(("certificate_file", path, {**oauth, "certificate_file": path}))
    return cases


async def test_the_api_refuses_each_source_outside_the_allow_list_at_add_and_update(
    pool: asyncpg.Pool, secrets: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_SECRET_DIR", str(secrets.directory))
    async with api_client(pool, _api_env(secrets)) as client:
        good = {**SERVER, "secret_env": ALLOWED_ENV}
        assert (await client.post("/api/v1/servers", json=good, headers=AUTH)).status == 201
        before = dict(await pool.fetchrow("SELECT * FROM sync.servers"))
        for field_name, value, settings in _cases(secrets):
            body = {k: v for k, v in {**good, **settings, "name": "ex2"}.items() if v is not None}
            added = await client.post("/api/v1/servers", json=body, headers=AUTH)
            assert added.status == 400, (field_name, value, await added.text())
            assert (await added.json())["field"] == field_name, (value, await added.text())
            change = {k: v for k, v in settings.items() if v is not None and k != "backend"}
            if "tenant" in change:  # an EWS server may use oauth too: same certificate check
                change["auth_kind"] = "oauth"
            updated = await client.patch("/api/v1/servers/ex1", json=change, headers=AUTH)
            assert updated.status == 400, (field_name, value, await updated.text())
            assert (await updated.json())["field"] == field_name, (value, await updated.text())
        assert dict(await pool.fetchrow("SELECT * FROM sync.servers")) == before


async def test_the_refusal_is_the_same_whether_the_file_exists_or_not(
    pool: asyncpg.Pool, secrets: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_SECRET_DIR", str(secrets.directory))
    paths = ["/etc/shadow", "/etc/passwd", "/etc/none", "/root/.ssh/none", str(secrets.outside)]
    async with api_client(pool, _api_env(secrets)) as client:
        details = set()
        for path in paths:
            body = {**SERVER, "ca_file": path, "secret_env": ALLOWED_ENV}
            resp = await client.post("/api/v1/servers", json=body, headers=AUTH)
            assert resp.status == 400
            details.add((await resp.json())["detail"])
    (detail,) = details  # one answer for a readable, an unreadable and a missing file
    assert "SYNC_SECRET_DIR" in detail
    assert not any(word in detail.lower() for word in ("exist", "denied", "no such", "found"))


async def test_files_inside_the_directory_are_accepted_and_stored_as_given(
    pool: asyncpg.Pool, secrets: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kubernetes secret volume: the file is a symlink to ..data/, itself a symlink that
    changes target on rotation; the name given is kept, not the target of the day."""
    data = secrets.directory / "..2026_12_01"
    data.mkdir()
    (data / "graph.pem").write_text("pem")
    (secrets.directory / "..data").symlink_to(data.name)
    (secrets.directory / "graph.pem").symlink_to("..data/graph.pem")
    monkeypatch.setenv("SYNC_SECRET_DIR", str(secrets.directory))
    async with api_client(pool, _api_env(secrets)) as client:
        body = {**SERVER, "secret_env": None, "secret_file": str(secrets.inside)}
        body["ca_file"] = str(secrets.directory / "graph.pem")
        body = {k: v for k, v in body.items() if v is not None}
        resp = await client.post("/api/v1/servers", json=body, headers=AUTH)
        assert resp.status == 201, await resp.text()
    row = await pool.fetchrow("SELECT secret_file, ca_file FROM sync.servers")
    assert dict(row) == {"secret_file": str(secrets.inside), "ca_file": body["ca_file"]}


def test_the_cli_refuses_them_too_with_exit_2_naming_the_field(
    run_cli: Cli, secrets: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_SECRET_DIR", str(secrets.directory))
    monkeypatch.setenv("SYNC_API_TOKEN", LEAK)  # re-set: the CLI fixture cleared SYNC_*
    assert run_cli(*_allowed_args("ex1")).code == 0
    flags = {"secret_env": "--password-env", "secret_file": "--password-file"}
    flags.update(ca_file="--ca-file")
    for field_name, value, _ in _cases(secrets):
        if field_name not in flags:
            continue
        add = _allowed_args("ex2")
        if field_name != "ca_file":  # the source replaces the allowed one
            add = add[: add.index("--password-env")]
        for verb_args in (
            [*add, flags[field_name], value],
            ["servers", "update", "ex1", flags[field_name], value],
        ):
            result = run_cli(*verb_args)
            assert result.code == 2, (verb_args, result)
            assert result.err.startswith(f"sync-service: {field_name}:"), result.err
            assert LEAK not in result.err + result.out
    oauth = ["servers", "update", "ex1", "--auth", "oauth", "--tenant", "t", "--client-id", "a"]
    for path in secrets.refused_files():
        result = run_cli(*oauth, "--certificate-file", path)
        assert result.code == 2 and result.err.startswith("sync-service: certificate_file:")


def _allowed_args(name: str) -> list[str]:
    args = add_server_args(name)
    args[args.index("--password-env") + 1] = ALLOWED_ENV
    return args


async def _hostile_rows(pool: asyncpg.Pool, url: str, secrets: Secrets) -> list[Server]:
    """Servers added as the store adds any, then pointed by SQL at a source the policy refuses
    (a database edited by hand, or written before the policy existed)."""
    store = Store(pool)
    sql_changes: list[tuple[str, str, str | None]] = [
        *(("secret_env", name, None) for name in REFUSED_ENVS),
        *(("secret_file", path, "secret_env") for path in secrets.refused_files()),
        ("ca_file", "/proc/self/environ", None),
        ("ca_file", str(secrets.outside), None),
    ]
    servers = []
    for n, (column, value, cleared) in enumerate(sql_changes):
        new = NewServer(f"h{n}", "ews", url, "basic", username="svc", secret_env=ALLOWED_ENV)
        server = await store.add_server(new)
        clear = f", {cleared} = NULL" if cleared else ""
        await pool.execute(
            f"UPDATE sync.servers SET {column} = $1{clear} WHERE id = $2", value, server.id
        )
        async with pool.acquire() as conn:
            await store.upsert_mailbox(conn, f"u{n}", _email(server), server.id, None, _MODES)
        refreshed = await store.server(server.id)
        assert refreshed is not None
        servers.append(refreshed)
    oauth = NewServer(
        "hcert", "graph", url.removesuffix("/EWS/Exchange.asmx"), "oauth", tenant="t",
        client_id="app", authority=url.removesuffix("/EWS/Exchange.asmx"),
        certificate_file=str(secrets.inside),
    )  # fmt: skip
    server = await store.add_server(oauth)
    await pool.execute(
        "UPDATE sync.servers SET certificate_file = '/proc/self/environ' WHERE id = $1", server.id
    )
    async with pool.acquire() as conn:
        await store.upsert_mailbox(conn, "ucert", _email(server), server.id, None, _MODES)
    refreshed = await store.server(server.id)
    assert refreshed is not None
    return [*servers, refreshed]


_MODES = ("two-way", "two-way", "two-way")


def _email(server: Server) -> str:
    return f"{server.name}@ex1.example"


def _refused_field(server: Server) -> str:
    return next(
        name
        for name in ("certificate_file", "ca_file", "secret_file", "secret_env")
        if getattr(server, name) and (name != "secret_env" or server.secret_env != ALLOWED_ENV)
    )


async def test_servers_test_refuses_a_row_written_by_sql_and_sends_nothing(
    pool: asyncpg.Pool, secrets: Secrets, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = await _hostile_rows(pool, listener.url, secrets)
    async with api_client(pool, _api_env(secrets)) as client:
        _leak_everywhere(monkeypatch)
        for server in hostile:
            resp = await client.post(f"/api/v1/servers/{server.name}/test", json={}, headers=AUTH)
            assert resp.status == 200, await resp.text()
            result = await resp.json()
            failed = [s for s in result["steps"] if s["status"] == "failed"]
            assert result["ok"] is False and len(failed) == 1, result
            assert f"{_refused_field(server)}:" in failed[0]["detail"], (server, failed)
            assert LEAK not in str(result)
        assert listener.seen == []  # not one request: no secret, no probe of the listener

        # The control: an allowed source reaches the listener, with its secret.
        good = await Store(pool).add_server(
            NewServer("good", "ews", listener.url, "basic", username="svc", secret_env=ALLOWED_ENV)
        )
        async with pool.acquire() as conn:
            await Store(pool).upsert_mailbox(conn, "ugood", EMAIL, good.id, None, _MODES)
        await client.post("/api/v1/servers/good/test", json={}, headers=AUTH)
    sent = {r["headers"].get("Authorization", "") for r in listener.seen}
    basic = "Basic " + base64.b64encode(f"svc:{ALLOWED_SECRET}".encode()).decode()
    assert listener.seen and basic in sent, listener.seen
    assert LEAK not in listener.texts()


async def test_a_pass_refuses_a_row_written_by_sql_and_sends_nothing(
    pool: asyncpg.Pool, secrets: Secrets, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = await _hostile_rows(pool, listener.url, secrets)
    settings = _settings(secrets.directory)
    _leak_everywhere(monkeypatch)
    store, queue = Store(pool), JobQueue(pool, timedelta(seconds=60))
    async with Backends(settings) as backends:
        runner = PassRunner(store, queue, backends, PostgresCrm(pool), settings, "test")
        for server in hostile:
            mailbox = await store.mailbox_by_email(_email(server))
            assert mailbox is not None
            await queue.enqueue(mailbox.id, PassKind.EXPRESS, source="test", priority=100)
            (job,) = await queue.claim("test", 1)
            result = await runner(job)
            assert isinstance(result, Done) and result.failed, (server, result)
            state = await store.mailbox_by_email(mailbox.email)
            assert state is not None and state.state == "disabled"
            assert f"{_refused_field(server)}:" in (state.state_reason or ""), state
            assert LEAK not in (state.state_reason or "")
            await queue.finish(job.id, "test", failed=True, outcome=result.outcome)
    assert listener.seen == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYNC_SECRET_DIR", "/proc"),
        ("SYNC_SECRET_DIR", "/proc/self"),
        ("SYNC_SECRET_DIR", "/"),
        ("SYNC_SECRET_DIR", "secrets"),
        ("SYNC_SECRET_ENV_PREFIX", "SYNC_"),
        ("SYNC_SECRET_ENV_PREFIX", "sync_x"),
        ("SYNC_SECRET_ENV_PREFIX", "BAD-PREFIX"),
    ],
)
def test_the_policy_itself_cannot_open_what_it_guards(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.upper().startswith("SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()
