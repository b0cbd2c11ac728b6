"""The Graph notification receiver, mounted on the service's API as it is in production and
called over real HTTP with hostile bodies: each is a 4xx naming the culprit, never a 500 with a
traceback, and nothing reaches the change callback."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from ews_client.models import EntityKind
from sync_service.dispatcher.graph_notifications import NOTIFICATION_PATH
from sync_service.operator import api

from .conftest import make_settings

STATE = "hostile-test-state"
BOX = "ann@example.com"


@dataclass
class Receiving:
    url: str
    changes: list[tuple[str, EntityKind | None]] = field(default_factory=list)


async def _ready() -> list[str]:
    return []


@pytest.fixture
async def receiving() -> AsyncIterator[Receiving]:
    settings = make_settings(
        SYNC_API_TOKEN="t0ken",
        SYNC_GRAPH_NOTIFICATION_URL="https://sync.example.com/api/v1/graph/notifications",
        SYNC_GRAPH_CLIENT_STATE=STATE,
    )
    changes: list[tuple[str, EntityKind | None]] = []
    app = api.build_app(
        _ready, settings=settings, on_graph_change=lambda m, e: changes.append((m, e))
    )
    runner = api.runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Receiving(f"http://127.0.0.1:{port}{NOTIFICATION_PATH}", changes)
    await runner.cleanup()


def _note(**fields: str) -> dict[str, str]:
    return {
        "subscriptionId": "sub-1",
        "clientState": STATE,
        "resource": f"Users/{BOX}/Contacts/AAMk",
        **fields,
    }


def _body(*notes: dict[str, str]) -> bytes:
    return json.dumps({"value": list(notes)}).encode()


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    traced = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert traced == [], [r.getMessage() for r in traced]


async def test_a_lone_surrogate_anywhere_is_a_400_naming_it(
    receiving: Receiving, caplog: pytest.LogCaptureFixture
) -> None:
    good = _body(_note())
    async with aiohttp.ClientSession() as http:
        for raw, culprit in (
            # json.dumps writes "\ud800" as the six characters \ud800, as a hostile sender would
            (_body(_note(clientState="\ud800")), "value[0].clientState"),
            (_body(_note(), _note(resource="Users/\udfff/Contacts/x")), "value[1].resource"),
            (_body(_note(subscriptionId="\ud800\udc00\ud800")), "value[0].subscriptionId"),
        ):
            async with http.post(receiving.url, data=raw) as resp:
                text = await resp.text()
                assert resp.status == 400, text
                assert text.startswith(f"{culprit}: not Unicode text"), text
        async with http.post(receiving.url, data=good) as resp:
            assert resp.status == 202
    # Only the good notification got through; the bad bodies dropped all of theirs.
    assert receiving.changes == [(BOX, EntityKind.CONTACT)]
    _no_tracebacks(caplog)


async def test_deep_nesting_and_non_collections_are_400(
    receiving: Receiving, caplog: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as http:
        for raw, culprit in (
            (b"[" * 50_000 + b"]" * 50_000, "body: JSON nested too deeply"),
            (b'{"value": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "body: JSON nested too deeply"),
            (b"\xff\xfe not json", "body: not JSON"),
            (b'{"value": {"clientState": "x"}}', "value: not a notification collection"),
            (b"[]", "value: not a notification collection"),
        ):
            async with http.post(receiving.url, data=raw) as resp:
                text = await resp.text()
                assert resp.status == 400, text
                assert text.startswith(culprit), text
    assert receiving.changes == []
    _no_tracebacks(caplog)


async def test_a_resource_naming_no_real_mailbox_is_not_handed_on(receiving: Receiving) -> None:
    async with aiohttp.ClientSession() as http:
        for resource in ("Users/ann%00@example.com/Contacts/x", "Users/a%1B[2J@x.com/Events/y"):
            async with http.post(receiving.url, data=_body(_note(resource=resource))) as resp:
                assert resp.status == 202
    assert receiving.changes == []


async def test_the_validation_echo_is_plain_text_and_not_sniffed(receiving: Receiving) -> None:
    async with aiohttp.ClientSession() as http:
        token = "<script>alert(1)</script>"
        async with http.post(receiving.url, params={"validationToken": token}) as resp:
            assert resp.status == 200 and await resp.text() == token
            assert resp.content_type == "text/plain"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        async with http.post(receiving.url, params={"validationToken": "x" * 5000}) as resp:
            assert resp.status == 400
            assert "validationToken" in await resp.text()
