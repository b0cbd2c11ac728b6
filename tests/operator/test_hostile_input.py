"""Hostile input to the admin API, over real HTTP: each is answered with a 4xx naming the field
(never a 500 with a traceback, never "503 database not available"), refused requests are logged
at most once per client per interval, and slow clients are cut off."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from sync_service.config import Settings, load_settings
from sync_service.operator import api
from sync_service.operator.api import OncePerClient
from sync_service.process.logs import JsonFormatter, KeyValueFormatter
from tests.operator.apiclient import AUTH, SERVER, TOKEN, api_client

DEEP = b"[" * 50_000 + b"]" * 50_000
CSV_HEADER = "crm_user_id,email,server,group\n"


async def _problem(resp: Any, status: int, field: str | None) -> dict[str, Any]:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = json.loads(text)
    assert body.get("field") == field, body
    return body


async def _raw(port: int, request: bytes, *, wait: float = 5.0) -> bytes:
    """Send `request` as is on a new connection; the answer's head and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(wait):
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            assert length is not None, head
            return head + await reader.readexactly(int(length.group(1)))
    finally:
        writer.close()


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    traced = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert traced == [], [r.getMessage() for r in traced]


async def test_a_bearer_token_that_is_not_utf8_is_unauthorized(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_client(pool) as client:
        port = client.server.port
        assert port is not None
        for token in (b"\xff\xfe", b"\xff\xfe" + TOKEN.encode(), b"\xc3"):
            answer = await _raw(
                port,
                b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Authorization: Bearer " + token + b"\r\n\r\n",
            )
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 401 "), answer
            assert json.loads(body)["field"] == "Authorization"
    _no_tracebacks(caplog)


def _path(template: str) -> str:
    for name, value in (("{name}", "ex1"), ("{email}", "ann@example.com"),
                        ("{entity}", "contacts"), ("{record_id}", "r1")):  # fmt: skip
        template = template.replace(name, value)
    return template


async def test_deeply_nested_json_is_a_400_on_every_json_endpoint(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    with_bodies = [r for r in api.ROUTES if r.body is not None]
    assert len(with_bodies) == 15
    async with api_client(pool) as client:
        for route in with_bodies:
            for body in (DEEP, b'{"a": ' + DEEP + b"}"):
                resp = await client.request(
                    route.method, _path(route.path), data=body, headers=AUTH
                )
                found = await _problem(resp, 400, "body")
                assert "nested too deeply" in found["detail"], (route.path, found)
    _no_tracebacks(caplog)


async def test_json_that_is_not_json_text_names_the_field(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as client:
        for raw, field in (
            (b'{"name": "ex1", "rate_per_second": NaN}', "body"),
            (b'{"name": "ex1", "rate_per_second": Infinity}', "body"),
            (b'{"name": "ex1", "backend": "ews", "rate_per_second": 1e999}', "rate_per_second"),
            (b'{"name": "\\ud800"}', "name"),
            (b'{"name": "ex1", "username": "\\udfff"}', "username"),
        ):
            resp = await client.post("/api/v1/servers", data=raw, headers=AUTH)
            await _problem(resp, 400, field)
        assert await pool.fetchval("SELECT count(*) FROM sync.servers") == 0


async def _seed(client: Any) -> None:
    assert (await client.post("/api/v1/servers", json=SERVER, headers=AUTH)).status == 201
    csv = CSV_HEADER + "u1,ann@example.com,ex1,paris\n"
    resp = await client.post("/api/v1/mailboxes/import", data=csv, headers=AUTH)
    assert (await resp.json())["inserted"] == 1


CONTROLS = ["\x00", "\x1b[31m", "\x7f", "\x85", "\x9b", "\r\n"]


async def test_control_characters_in_json_fields_name_the_field(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_client(pool) as client:
        await _seed(client)
        before = await pool.fetch("SELECT * FROM sync.mailboxes ORDER BY id")
        for bad in CONTROLS:
            for method, path, body, field in (
                ("POST", "/api/v1/servers", {**SERVER, "name": f"ex{bad}2"}, "name"),
                ("POST", "/api/v1/servers", {**SERVER, "name": "ex2", "username": bad}, "username"),
                ("PATCH", "/api/v1/servers/ex1", {"secret_env": f"EXCHANGE_{bad}"}, "secret_env"),
                ("PATCH", "/api/v1/mailboxes/ann@example.com", {"group": f"p{bad}"}, "group"),
                ("POST", "/api/v1/mailboxes/ann@example.com/disable", {"reason": bad}, "reason"),
                ("POST", "/api/v1/sync", {"groups": [f"paris{bad}"]}, "groups"),
                ("POST", "/api/v1/sync", {"mailbox": f"ann{bad}@example.com"}, "mailbox"),
                ("POST", "/api/v1/sync", {"server": f"ex1{bad}"}, "server"),
                ("POST", "/api/v1/servers/ex1/test", {"mailbox": f"a{bad}@example.com"}, "mailbox"),
            ):
                resp = await client.request(method, path, json=body, headers=AUTH)
                found = await _problem(resp, 400, field)
                assert "control characters" in found["detail"], found
        assert await pool.fetch("SELECT * FROM sync.mailboxes ORDER BY id") == before
        assert await pool.fetchval("SELECT count(*) FROM sync.servers") == 1
        assert await pool.fetchval("SELECT count(*) FROM sync.jobs") == 0
    _no_tracebacks(caplog)


async def test_strings_over_their_bound_name_the_field(pool: asyncpg.Pool) -> None:
    long = "x" * 3000  # over the ~2.7 KB a btree index row holds
    async with api_client(pool) as client:
        await _seed(client)
        for method, path, body, field in (
            ("PATCH", "/api/v1/mailboxes/ann@example.com", {"group": long}, "group"),
            ("POST", "/api/v1/sync", {"groups": [long]}, "groups"),
            ("POST", "/api/v1/sync", {"groups": ["g"] * 101}, "groups"),
            ("POST", "/api/v1/sync", {"mailbox": f"{long}@example.com"}, "mailbox"),
            ("POST", "/api/v1/sync", {"server": long}, "server"),
            ("POST", "/api/v1/mailboxes/ann@example.com/disable", {"reason": long}, "reason"),
            ("POST", "/api/v1/servers", {**SERVER, "name": "ex2", "username": long}, "username"),
            ("POST", "/api/v1/servers", {**SERVER, "name": "e" * 64}, "name"),
        ):
            resp = await client.request(method, path, json=body, headers=AUTH)
            found = await _problem(resp, 400, field)
            assert "at most" in found["detail"], found
        shown = await client.get("/api/v1/mailboxes/ann@example.com", headers=AUTH)
        assert (await shown.json())["group"] == "paris"


async def test_control_characters_and_bounds_in_query_and_path(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_client(pool) as client:
        await _seed(client)
        for query, field in (
            ("/api/v1/mailboxes?server=%00", "server"),
            ("/api/v1/mailboxes?server=ex1%1B", "server"),
            ("/api/v1/mailboxes?group=paris%00", "group"),
            ("/api/v1/mailboxes?group=paris%C2%9B", "group"),
            (f"/api/v1/mailboxes?group={'x' * 3000}", "group"),
            ("/api/v1/mailboxes?" + "&".join(["group=g"] * 101), "group"),
            ("/api/v1/mailboxes?state=%00", "state"),
            ("/api/v1/mailboxes?cursor=%00", "cursor"),
            ("/api/v1/mailboxes?cursor=eyJhZnRlciI6IDk5OTk5OTk5OTk5OTk5OTk5OTk5OX0", "cursor"),
            ("/api/v1/runs?mailbox=ann%00@example.com", "mailbox"),
            ("/api/v1/runs?mailbox=ann%7F@example.com", "mailbox"),
            ("/api/v1/runs?since=99999999999999d", "since"),
            ("/api/v1/jobs?ids=1,99999999999999999999", "ids"),
            ("/api/v1/jobs?ids=" + ",".join(["1"] * 1001), "ids"),
            ("/api/v1/servers/ex1%00", "name"),
            ("/api/v1/servers/ex1%1B%5B2J", "name"),
            (f"/api/v1/servers/{'e' * 64}", "name"),
            ("/api/v1/mailboxes/ann%00@example.com", "mailbox"),
            ("/api/v1/mailboxes/ann%1B@example.com", "mailbox"),
            ("/api/v1/mailboxes/ann%C2%85@example.com", "mailbox"),
            ("/api/v1/mailboxes/ann@example.com%0A", "mailbox"),
        ):
            resp = await client.get(query, headers=AUTH)
            await _problem(resp, 400, field)
    _no_tracebacks(caplog)


async def test_csv_rows_are_checked_one_by_one(pool: asyncpg.Pool) -> None:
    rows = [
        "u1,ann@example.com,ex1,paris",  # line 2: good
        "u\x002,bob@example.com,ex1,paris",  # 3: NUL in crm_user_id
        "u3,carol\x1b[2J@example.com,ex1,",  # 4: ESC in the address
        "u4,dan@example.com,ex1\x7f,",  # 5: DEL in the server
        f"{'u' * 3000},erin@example.com,ex1,",  # 6: crm_user_id over its bound
        f"u6,fay@example.com,ex1,{'g' * 3000}",  # 7: group over its bound
        "u7,gil@example.com,ex1,lon\x9bdon",  # 8: C1 control in the group
        f"u8,{'h' * 250}@example.com,ex1,",  # 9: address over 254 characters
        "u9,not an address,ex1,",  # 10: malformed address
        "u10,ivy@example.com,ex1,london",  # 11: good
        "u11,jo@example.com\x00,ex1,",  # 12: NUL in the address
    ]
    expected = [
        (3, "crm_user_id"),
        (4, "email"),
        (5, "server"),
        (6, "crm_user_id"),
        (7, "group"),
        (8, "group"),
        (9, "email"),
        (10, "email"),
        (12, "email"),
    ]
    async with api_client(pool) as client:
        assert (await client.post("/api/v1/servers", json=SERVER, headers=AUTH)).status == 201
        csv = CSV_HEADER + "\n".join(rows) + "\n"
        resp = await client.post("/api/v1/mailboxes/import", data=csv.encode(), headers=AUTH)
        assert resp.status == 200, await resp.text()
        report = await resp.json()
    assert report["inserted"] == 2 and report["updated"] == 0
    assert [(e["line"], e["field"]) for e in report["invalid"]] == expected
    for error in report["invalid"]:
        assert error["message"].startswith(error["field"]) or "address" in error["message"]
        assert len(error["message"]) < 200 and "\x00" not in error["message"]
    stored = await pool.fetch("SELECT crm_user_id, email, server_group FROM sync.mailboxes")
    assert sorted(tuple(r) for r in stored) == [
        ("u1", "ann@example.com", "paris"),
        ("u10", "ivy@example.com", "london"),
    ]


async def test_refusals_are_logged_once_per_client_per_interval(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sync_service.operator.api")
    async with api_client(pool) as client:
        for _ in range(50):
            resp = await client.get("/api/v1/status", headers={"Authorization": "Bearer wrong"})
            assert resp.status == 401
            resp = await client.get("/api/v1/mailboxes?server=%00", headers=AUTH)
            assert resp.status == 400
    refused = [r for r in caplog.records if r.getMessage() == "api request refused"]
    assert len(refused) == 1
    assert vars(refused[0])["client"] == "127.0.0.1" and vars(refused[0])["status"] == 401


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def test_control_characters_never_reach_a_log_line_raw() -> None:
    record = logging.LogRecord("sync_service", logging.WARNING, "", 0, "in \x1b[2J", None, None)
    record.mailbox = "ann\x1b[31m\x7f\x9b\x00@example.com"  # no separator in it
    record.server = "ex\x85"  # NEL, a separator to Python
    record.error = "line\r\nforged=1"
    record.counts = {"odd\x7f": "\x1b"}
    for formatter in (KeyValueFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert CONTROL.search(line) is None, line
        assert "ann\\u001b[31m\\u007f\\u009b\\u0000@example.com" in line, line


async def test_a_refused_hostile_path_is_logged_escaped(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sync_service.operator.api")
    async with api_client(pool) as client:
        resp = await client.get("/api/v1/mailboxes/ann%1B[2J%7F%00@example.com", headers=AUTH)
        assert resp.status == 400
    [refused] = [r for r in caplog.records if r.getMessage() == "api request refused"]
    line = KeyValueFormatter().format(refused)
    assert CONTROL.search(line) is None and "%1B" in line, line


def test_once_per_client_holds_back_and_counts() -> None:
    now = [0.0]
    limiter = OncePerClient(interval=60, capacity=2, clock=lambda: now[0])
    assert limiter.admit("a") == 0
    assert [limiter.admit("a") for _ in range(3)] == [None, None, None]
    assert limiter.admit("b") == 0
    assert limiter.admit("c") is None  # two addresses remembered: a third is not logged
    now[0] = 61.0
    assert limiter.admit("a") == 3  # the interval passed: logged, with what was held back
    assert limiter.admit("c") == 0  # b expired, so c has room
    assert limiter.admit("b") is None  # a and c fill the memory again


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNC_API_TOKEN", TOKEN)
    return load_settings()


@asynccontextmanager
async def _served(
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    header_timeout: float = 10.0,
    body_timeout: float = 30.0,
) -> AsyncIterator[int]:
    """The app as the service serves it (api.runner), on a free port of 127.0.0.1."""
    app = api.build_app(_ready, pool=pool, settings=settings, body_timeout=body_timeout)
    runner = api.runner(app, header_timeout=header_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _ready() -> list[str]:
    return []


async def _closed_after(port: int, parts: list[bytes], pause: float, wait: float) -> float:
    """Send `parts` with `pause` between them; seconds until the server closed the connection."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    try:

        async def trickle() -> None:
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)

        sender = asyncio.create_task(trickle())
        async with asyncio.timeout(wait):
            answer = await reader.read()
        sender.cancel()
        assert answer == b"", answer
        return loop.time() - started
    finally:
        writer.close()


async def test_a_client_holding_a_partial_request_head_is_cut_off(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with _served(pool, settings, header_timeout=0.5) as port:
        # Half a request line, then nothing.
        assert await _closed_after(port, [b"GET /healthz HT"], 0, wait=5) < 3
        # A head trickled byte by byte: the bytes do not buy more time.
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
        trickled = [head[i : i + 1] for i in range(len(head))]
        assert await _closed_after(port, trickled, 0.1, wait=5) < 3
        # Silence after connecting is cut off the same way.
        assert await _closed_after(port, [], 0, wait=5) < 3
        # A whole request is still answered.
        answer = await _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")


async def test_a_client_holding_a_partial_body_is_answered_408(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with _served(pool, settings, body_timeout=0.5) as port:
        loop = asyncio.get_running_loop()
        started = loop.time()
        head = (
            b"POST /api/v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 100\r\n\r\n"
        )
        answer = await _raw(port, head + b'{"mailbox": ', wait=5)
        assert loop.time() - started < 3
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 408 "), answer
        assert json.loads(body)["field"] == "body"
        # A body sent in time is read and answered as usual.
        whole = b'{"mailbox": "nobody@example.com"}'
        fast = head.replace(b"100", str(len(whole)).encode()).replace(
            b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
        )
        answer = await _raw(port, fast + whole)
        assert answer.startswith(b"HTTP/1.1 404 "), answer


async def test_requests_aiohttp_cannot_parse_are_one_warning_per_client(
    pool: asyncpg.Pool, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A NUL in a header or a request line over 8,190 bytes is answered 400 by aiohttp before
    the API sees it; aiohttp would log each with a traceback at ERROR. The service logs one
    warning line per client and interval, without a traceback."""
    caplog.set_level(logging.INFO)
    async with _served(pool, settings) as port:
        for _ in range(3):
            nul = await _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: \x00\r\n\r\n")
            assert nul.startswith(b"HTTP/1.0 400 ")  # aiohttp answers before it reads a version
        long_line = b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert b" 400 " in (await _raw(port, long_line))[:20]
    server_records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [r.getMessage() for r in server_records] == ["malformed request refused"]
    assert "BadHttpMessage" in str(getattr(server_records[0], "error", ""))
    _no_tracebacks(caplog)
