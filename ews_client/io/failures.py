"""The one map from foreign exceptions (aiohttp, asyncio, ssl, OSError, lxml) to ours.

Every transport (EWS request, EWS stream, Graph request) translates what escapes aiohttp
through `translate`, so that one failure means one class, one code and one retry rule
wherever it happens (httpcore's habit: translate once, at the boundary).

The retry rule, kept in the `sent` column:
- "never": the request never left (no connection, TLS refused, DNS failed). Retrying cannot
  repeat a write, so it is always safe.
- "maybe": the request went out and the answer was lost (reset, timeout, truncated body).
  The server may have acted on it; a write must look before it writes again. Their codes
  form `AMBIGUOUS_CODES`, which the throttle and the EWS create path consult.

Rows are tried in order and the first whose classes match wins, so a subclass comes before
its base (aiohttp's connect timeout is both a TimeoutError and a connection error).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

import aiohttp
from lxml import etree

from ews_client.errors import ExchangeError, ProtocolError, TransientError

Sent = Literal["never", "maybe"]
Detail = Callable[[BaseException], str]


@dataclass(frozen=True, slots=True)
class Failure:
    """One row: which foreign exceptions, and what they become."""

    kinds: tuple[type[BaseException], ...]
    error: type[ExchangeError]
    code: str
    sent: Sent
    detail: Detail  # the message; says which exception, never what the request carried

    @property
    def ambiguous(self) -> bool:
        """True when the server may have acted although we have no answer."""
        return self.sent == "maybe"


def _connect_detail(exc: BaseException) -> str:
    reason = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    return f"cannot connect: {reason}"


def _kind(label: str) -> Detail:
    return lambda exc: f"{label}: {type(exc).__name__}"


FAILURES: tuple[Failure, ...] = (
    # Connect phase: nothing was sent.
    Failure(
        (aiohttp.ConnectionTimeoutError,), TransientError, "Connect", "never",
        lambda exc: "cannot connect: timed out",
    ),
    Failure(
        (aiohttp.ClientConnectorError, ssl.SSLCertVerificationError, socket.gaierror,
         ConnectionRefusedError),
        TransientError, "Connect", "never", _connect_detail,
    ),
    # After sending: the answer is lost or cut short.
    Failure((TimeoutError,), TransientError, "Timeout", "maybe", lambda exc: "timed out"),
    Failure(
        (aiohttp.ClientPayloadError,), TransientError, "PayloadError", "maybe",
        lambda exc: f"truncated answer: {exc}",
    ),
    Failure(
        (aiohttp.ClientError, OSError), TransientError, "Network", "maybe",
        _kind("connection failed"),
    ),
    # An answer arrived but does not parse. The pure parser (`ews.xml.parse_xml`) translates
    # lxml's errors itself, the same way; this row catches one that reaches a transport.
    Failure(
        (etree.LxmlError,), ProtocolError, "", "maybe", lambda exc: f"malformed XML: {exc}"
    ),
)  # fmt: skip

# A 500 answer also came after the server had the request: it may have acted.
AMBIGUOUS_CODES = frozenset(f.code for f in FAILURES if f.ambiguous and f.code) | {"HTTP500"}


def failure_for(exc: BaseException) -> Failure | None:
    """The row for `exc`, or None when it is not a failure we translate (a bug: let it be)."""
    for row in FAILURES:
        if isinstance(exc, row.kinds):
            return row
    return None


def translate(exc: BaseException, during: str) -> ExchangeError | None:
    """Our error for a foreign exception that escaped a transport call, or None.

    `during` names the call ("request", "stream") and prefixes the message."""
    if isinstance(exc, ExchangeError):
        return exc
    row = failure_for(exc)
    if row is None:
        return None
    return row.error(f"{during}: {row.detail(exc)}", code=row.code)


def raise_translated(exc: Exception, during: str) -> NoReturn:
    """Raise our error for `exc` (from it), or `exc` itself when it is ours or not foreign."""
    err = translate(exc, during)
    if err is None or err is exc:
        raise exc
    raise err from exc
