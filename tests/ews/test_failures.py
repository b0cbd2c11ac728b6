"""The foreign-exception table: each foreign failure -> our class, code and retry rule, the
same through every transport (EWS request, EWS stream, Graph request)."""

from __future__ import annotations

import socket
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from lxml import etree

from ews_client.errors import ExchangeError, ItemNotFoundError, ProtocolError, TransientError
from ews_client.ews.xml import parse_xml
from ews_client.graph.requests import GraphRequest
from ews_client.io.auth import BasicAuth
from ews_client.io.failures import AMBIGUOUS_CODES, FAILURES, failure_for, translate
from ews_client.io.graph_transport import GraphTransport
from ews_client.io.transport import Transport

KEY = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)


def _lxml_error() -> etree.XMLSyntaxError:
    try:
        etree.fromstring(b"<a>")
    except etree.XMLSyntaxError as exc:
        return exc
    raise AssertionError("lxml accepted a broken document")


CASES: list[tuple[BaseException, type[ExchangeError], str, bool]] = [
    # (foreign exception, our class, code, ambiguous: the server may have acted)
    (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
     TransientError, "Connect", False),
    (aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError("bad cert")),
     TransientError, "Connect", False),
    (aiohttp.ConnectionTimeoutError("connect"), TransientError, "Connect", False),
    (ssl.SSLCertVerificationError("bad cert"), TransientError, "Connect", False),
    (socket.gaierror(-2, "Name or service not known"), TransientError, "Connect", False),
    (ConnectionRefusedError(111, "refused"), TransientError, "Connect", False),
    (TimeoutError(), TransientError, "Timeout", True),
    (aiohttp.SocketTimeoutError("read"), TransientError, "Timeout", True),
    (aiohttp.ClientPayloadError("cut"), TransientError, "PayloadError", True),
    (aiohttp.ServerDisconnectedError(), TransientError, "Network", True),
    (aiohttp.ClientOSError(104, "reset"), TransientError, "Network", True),
    (ConnectionResetError(104, "reset"), TransientError, "Network", True),
    (ssl.SSLError("bad record mac"), TransientError, "Network", True),
    (OSError("broken pipe"), TransientError, "Network", True),
    (_lxml_error(), ProtocolError, "", True),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "cls", "code", "ambiguous"), CASES, ids=lambda v: repr(v)[:40])
def test_table(exc: BaseException, cls: type[ExchangeError], code: str, ambiguous: bool) -> None:
    row = failure_for(exc)
    assert row is not None
    assert (row.error, row.code, row.ambiguous) == (cls, code, ambiguous)
    err = translate(exc, "request")
    assert type(err) is cls and err.code == code
    assert str(err).startswith("request: ")
    assert (code in AMBIGUOUS_CODES) == (ambiguous and bool(code))


def test_connect_message_names_the_os_error() -> None:
    exc = aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))
    assert str(translate(exc, "request")) == "request: cannot connect: [Errno 111] refused"


def test_ours_pass_through_and_bugs_are_not_translated() -> None:
    ours = ItemNotFoundError("gone", code="ErrorItemNotFound")
    assert translate(ours, "request") is ours
    assert failure_for(ValueError("a bug")) is None
    assert translate(KeyError("a bug"), "stream") is None


def test_a_subclass_row_comes_before_its_base() -> None:
    for i, row in enumerate(FAILURES):
        for later in FAILURES[i + 1 :]:
            for kind in later.kinds:
                shadowed = [k for k in row.kinds if issubclass(kind, k)]
                assert not shadowed, f"{kind.__name__} can never reach its row"


def test_ambiguous_codes_are_the_sent_rows_and_a_500() -> None:
    assert {"Timeout", "PayloadError", "Network", "HTTP500"} == AMBIGUOUS_CODES


def test_the_parser_translates_lxml_like_the_table() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_xml(b"<a>")
    row = failure_for(_lxml_error())
    assert row is not None and (type(info.value), info.value.code) == (row.error, row.code)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_every_transport_says_connect_when_nothing_was_sent() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    auth = BasicAuth("svc", "pw")
    async with Transport(url + "/EWS/Exchange.asmx", auth) as ews:
        with pytest.raises(TransientError) as posted:
            await ews.post(b"<x/>", "a@x.org")
        with pytest.raises(TransientError) as streamed:
            async for _ in ews.stream(b"<x/>", "a@x.org", read_timeout_s=5):
                pass
    async with GraphTransport(url + "/v1.0", auth) as graph:
        with pytest.raises(TransientError) as sent:
            await graph.send(GraphRequest("POST", "/users/a@x.org/contacts", {}), "a@x.org")
    codes = {posted.value.code, streamed.value.code, sent.value.code}
    assert codes == {"Connect"} and "Connect" not in AMBIGUOUS_CODES
