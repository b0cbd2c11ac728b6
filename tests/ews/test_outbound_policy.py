"""The outbound policy: which addresses are refused (always, or with deny_private), in which
forms, and that every path out checks them before a byte is sent: the EWS and Graph transports
(literal addresses and resolved names) and msal's token requests. A raw TCP sink on 127.0.0.1
shows what would have been reached; a control with the policy off shows the sink can see it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from ews_client.errors import ExchangeError, OutboundRefusedError
from ews_client.graph.requests import GraphRequest
from ews_client.io.auth import BasicAuth, OAuthClientCredentials
from ews_client.io.graph_transport import GraphTransport
from ews_client.io.outbound import OutboundPolicy, literal_address
from ews_client.io.transport import Transport
from tests.ews.listeners import Sink, sink

OFF, ON = OutboundPolicy(), OutboundPolicy(deny_private=True)
AUTH = BasicAuth("svc", "pw")

# (address, refused with deny_private off, refused with it on)
TABLE = [
    ("169.254.169.254", True, True),
    ("169.254.0.1", True, True),
    ("fe80::1", True, True),
    ("fe80::1%1", True, True),
    ("0.0.0.0", True, True),
    ("0.1.2.3", True, True),
    ("::", True, True),
    ("224.0.0.1", True, True),
    ("ff02::1", True, True),
    ("240.0.0.1", True, True),
    ("255.255.255.255", True, True),
    ("::ffff:169.254.169.254", True, True),
    ("64:ff9b::a9fe:a9fe", True, True),  # NAT64 of 169.254.169.254
    ("::7f00:1", True, True),  # IPv4-compatible: reserved
    ("127.0.0.1", False, True),
    ("127.8.9.10", False, True),
    ("::1", False, True),
    ("::ffff:127.0.0.1", False, True),
    ("10.1.2.3", False, True),
    ("172.16.0.1", False, True),
    ("172.31.255.255", False, True),
    ("192.168.1.1", False, True),
    ("100.64.0.1", False, True),
    ("100.127.255.255", False, True),
    ("fc00::1", False, True),
    ("fd12:3456::1", False, True),
    ("::ffff:10.0.0.1", False, True),
    ("8.8.8.8", False, False),
    ("172.32.0.1", False, False),
    ("100.128.0.1", False, False),
    ("52.96.0.1", False, False),
    ("2603:1026::1", False, False),
    ("::ffff:8.8.8.8", False, False),
]


@pytest.mark.parametrize(("address", "off", "on"), TABLE, ids=[row[0] for row in TABLE])
def test_the_ranges(address: str, off: bool, on: bool) -> None:
    assert (OFF.refusal(address) is not None, ON.refusal(address) is not None) == (off, on)


def test_a_refusal_names_host_address_and_range() -> None:
    with pytest.raises(OutboundRefusedError) as info:
        ON.check("ex.internal", "10.0.0.7")
    assert info.value.code == "DeniedAddress"
    assert "ex.internal resolves to 10.0.0.7" in str(info.value)
    assert "private (10.0.0.0/8)" in str(info.value)
    assert "IPv4-mapped 169.254.169.254" in (OFF.refusal("::ffff:a9fe:a9fe") or "")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2852039166", "169.254.169.254"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("[::1]", "::1"),
        ("10.0.0.1", "10.0.0.1"),
        ("example.com", None),
        ("1password.example", None),
        ("", None),
    ],
)
def test_literal_addresses_in_every_form(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == address


Send = Callable[[str, OutboundPolicy], Awaitable[object]]


async def _ews(url: str, policy: OutboundPolicy) -> object:
    async with Transport(url + "/EWS/Exchange.asmx", AUTH, outbound=policy) as ews:
        return await ews.post(b"<soap/>", "a@x.org")


async def _graph(url: str, policy: OutboundPolicy) -> object:
    async with GraphTransport(url + "/v1.0", AUTH, outbound=policy) as graph:
        return await graph.send(GraphRequest("GET", "/users/a@x.org/contacts"), "a@x.org")


async def _reach(url: str, policy: OutboundPolicy) -> object:
    async with Transport(url + "/EWS/Exchange.asmx", AUTH, outbound=policy) as ews:
        return await ews.reach()


async def _msal(url: str, policy: OutboundPolicy) -> object:
    auth = OAuthClientCredentials(
        authority=url.replace("http://", "https://") + "/tenant",
        client_id="app",
        client_secret="s3cret-value",
        outbound=policy,
        refresh_margin_s=0,
    )
    try:
        return await auth.headers()
    finally:
        auth.close()


SENDERS = [_ews, _graph, _reach, _msal]


async def _refused(send: Send, url: str, policy: OutboundPolicy, target: Sink) -> str:
    with pytest.raises(OutboundRefusedError) as info:
        await asyncio.wait_for(send(url, policy), 10)
    await asyncio.sleep(0.05)  # a connection would have been accepted by now
    assert target.connections == 0 and not target.received, str(info.value)
    assert info.value.code == "DeniedAddress"
    return str(info.value)


async def _reached(send: Send, url: str, target: Sink) -> None:
    """The control: with the private ranges allowed the same call reaches the sink."""
    with pytest.raises(ExchangeError):  # the sink answers nothing a client accepts
        await asyncio.wait_for(send(url, OFF), 10)
    assert target.connections >= 1
    target.connections = 0
    target.received.clear()


@pytest.mark.parametrize("send", SENDERS, ids=lambda f: f.__name__)
async def test_deny_private_refuses_loopback_by_address_and_by_name(send: Send) -> None:
    async with sink() as target:
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            url = f"http://{host}:{target.port}"
            if host != "[::ffff:127.0.0.1]":  # a dual-stack socket would be needed to reach it
                await _reached(send, url, target)
            message = await _refused(send, url, ON, target)
            assert host.strip("[]") in message and "loopback" in message


@pytest.mark.parametrize("send", SENDERS, ids=lambda f: f.__name__)
async def test_deny_private_refuses_private_ranges(send: Send) -> None:
    async with sink() as target:
        for host, why in (
            ("10.20.30.40", "is private (10.0.0.0/8)"),
            ("192.168.0.1:8443", "is private (192.168.0.0/16)"),
            ("172.20.0.5", "is private (172.16.0.0/12)"),
            ("100.64.1.1", "is shared (CGNAT) (100.64.0.0/10)"),
            ("[fd00::5]", "is private (unique local) (fc00::/7)"),
        ):
            message = await _refused(send, f"http://{host}", ON, target)
            assert why in message, message


@pytest.mark.parametrize("send", SENDERS, ids=lambda f: f.__name__)
async def test_metadata_and_unspecified_are_refused_with_the_policy_off(send: Send) -> None:
    async with sink() as target:
        # The control: on Linux a connection to 0.0.0.0 reaches a listener on 127.0.0.1.
        with socket.create_connection(("0.0.0.0", target.port), timeout=5):
            pass
        await asyncio.sleep(0.05)
        assert target.connections == 1
        target.connections = 0
        for url, shown in (
            ("http://169.254.169.254", "169.254.169.254 is link-local (169.254.0.0/16)"),
            ("http://2852039166", "2852039166 (that is 169.254.169.254) is link-local"),
            ("http://[::ffff:169.254.169.254]", "IPv4-mapped 169.254.169.254"),
            (f"http://0.0.0.0:{target.port}", "0.0.0.0 is unspecified (0.0.0.0/8)"),
        ):
            assert shown in await _refused(send, url, OFF, target)
