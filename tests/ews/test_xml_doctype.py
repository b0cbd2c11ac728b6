"""A DOCTYPE is refused whatever the document's encoding, by the client (an answer served over
HTTP) and by the simulator (a request posted to it): the rule is kept on the parsed document,
not on a byte pattern that a UTF-16 or UTF-32 document does not contain."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ews_client.errors import ItemNotFoundError, ProtocolError
from ews_client.ews.xml import parse_xml
from ews_client.io.auth import BasicAuth
from ews_client.io.ews import EwsClient
from ews_client.io.throttle import ThrottleLimits
from ews_client.models import EntityKind, ItemRef
from ews_client.simulator.testing import RunningSimulator, running_simulator
from tests.ews.conftest import response
from tests.simulator.helpers import auth, envelope, sync_body

BOX = "user00001@sim.example"
# (codec, XML encoding name): with a byte order mark, and big-endian without one
ENCODINGS = [
    ("utf-8", "utf-8"),
    ("utf-16", "UTF-16"),
    ("utf-16-be", "UTF-16BE"),
    ("utf-32", "UTF-32"),
]
DTDS = {
    "internal": '<!DOCTYPE s:Envelope [<!ENTITY xxe "expanded">]>',
    "external": '<!DOCTYPE s:Envelope SYSTEM "file:///etc/passwd">',
    "bare": "<!DOCTYPE s:Envelope>",
}


def _encoded(document: str, codec: str, name: str) -> bytes:
    """`document` (starting with its root) with a declaration naming `name`, in `codec`."""
    return f'<?xml version="1.0" encoding="{name}"?>{document}'.encode(codec)


def _answer(dtd: str) -> str:
    """A real GetItem answer with `dtd` before its root (and its entity used, if declared)."""
    text = response("get_item_contact").decode()
    body = text[text.index("<s:Envelope") :]
    if "ENTITY" in dtd:
        body = body.replace("</s:Envelope>", "<x>&xxe;</x></s:Envelope>")
    return dtd + body


@asynccontextmanager
async def _exchange(answer: bytes) -> AsyncIterator[str]:
    """An EWS endpoint on 127.0.0.1 that answers every request with `answer`."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=answer, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/EWS/Exchange.asmx", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/EWS/Exchange.asmx"
    finally:
        await runner.cleanup()


async def _get_items(url: str) -> list[Any]:
    """The recorded answer holds two messages: a contact, and an item not found."""
    refs = [ItemRef("AAMkC1"), ItemRef("AAMkC2")]
    # A read retries a malformed answer; once is enough to see the refusal.
    once = ThrottleLimits(max_attempts=1)
    async with EwsClient(url, BasicAuth("svc", "pw"), throttle_limits=once) as client:
        return list(await client.get_items("a@x.org", refs, EntityKind.CONTACT))


@pytest.mark.parametrize(("codec", "name"), ENCODINGS)
@pytest.mark.parametrize("kind", sorted(DTDS))
async def test_the_client_refuses_a_doctype_in_any_encoding(
    codec: str, name: str, kind: str
) -> None:
    async with _exchange(_encoded(_answer(DTDS[kind]), codec, name)) as url:
        with pytest.raises(ProtocolError) as refused:
            await _get_items(url)
    assert "DOCTYPE" in str(refused.value)


@pytest.mark.parametrize(("codec", "name"), ENCODINGS)
async def test_the_client_reads_the_same_answer_without_a_doctype(codec: str, name: str) -> None:
    async with _exchange(_encoded(_answer(""), codec, name)) as url:
        found, missing = await _get_items(url)
    assert found.item.given_name == "Ada" and isinstance(missing, ItemNotFoundError)


def test_entity_expansion_in_utf16_is_refused_without_expanding() -> None:
    text = response("entity_expansion").decode()
    hostile = text.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    started = time.perf_counter()
    with pytest.raises(ProtocolError, match="DOCTYPE"):
        parse_xml(hostile.encode("utf-16"))
    assert time.perf_counter() - started < 0.1


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as running:
        running.sim.add_numbered(1, items_per_folder=1)
        yield running


async def _post(sim: RunningSimulator, body: bytes) -> tuple[int, str]:
    headers = {**auth(sim), "X-AnchorMailbox": BOX}
    headers["Content-Type"] = "text/xml"  # the document declares its own encoding
    async with (
        aiohttp.ClientSession() as http,
        http.post(sim.ews_url, data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


def _request(dtd: str) -> str:
    text = envelope(sync_body("contacts"), BOX).decode()
    return dtd + text[text.index("<s:Envelope") :]


@pytest.mark.parametrize(("codec", "name"), ENCODINGS)
@pytest.mark.parametrize("kind", sorted(DTDS))
async def test_the_simulator_refuses_a_doctype_in_any_encoding(
    sim: RunningSimulator, codec: str, name: str, kind: str
) -> None:
    status, text = await _post(sim, _encoded(_request(DTDS[kind]), codec, name))
    assert status == 500 and "ErrorSchemaValidation" in text and "DTD" in text, text
    assert "expanded" not in text and "root:" not in text


@pytest.mark.parametrize(("codec", "name"), ENCODINGS)
async def test_the_simulator_reads_the_same_request_without_a_doctype(
    sim: RunningSimulator, codec: str, name: str
) -> None:
    status, text = await _post(sim, _encoded(_request(""), codec, name))
    assert status == 200 and 'ResponseClass="Success"' in text, text
