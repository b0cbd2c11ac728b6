"""HTTP for one Graph endpoint: one aiohttp session, pool limits, timeouts, TLS, a size cap.

Foreign exceptions are translated here, once (httpcore's habit); HTTP statuses are left to
the caller (`responses.error_for`) so that `$batch` inner answers map the same way.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from ews_client.auth import Auth
from ews_client.errors import AuthError, ExchangeError, ProtocolError, TransientError
from ews_client.graph.requests import GraphRequest
from ews_client.transport import TransportLimits


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _ssl_context(url: str, ca_file: str | None) -> ssl.SSLContext | bool:
    scheme = urlsplit(url).scheme.lower()
    if scheme == "http":
        return False  # plain HTTP only because the URL says so explicitly
    if scheme != "https":
        raise ValueError(f"Graph URL must be https:// (or explicit http://): {url!r}")
    return ssl.create_default_context(cafile=ca_file)


class GraphTransport:
    """Sends `GraphRequest`s to one Graph root (e.g. https://graph.microsoft.com/v1.0)."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        *,
        limits: TransportLimits | None = None,
        ca_file: str | None = None,
        user_agent: str = "crm-exchange-sync/0.1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.limits = limits or TransportLimits()
        self._ssl = _ssl_context(self.base_url, ca_file)
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GraphTransport:
        self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.limits.connections,
                keepalive_timeout=self.limits.keepalive_s,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def absolute(self, url: str) -> str:
        """Our URL for a request; next/delta links must point at the same root, so that the
        bearer token is never sent to another host."""
        if url.startswith("/"):
            return self.base_url + url
        if not url.startswith(self.base_url + "/"):
            raise ProtocolError(f"link outside the Graph root: {url[:80]!r}", code="Link")
        return url

    async def send(self, req: GraphRequest, mailbox: str | None) -> RawResponse:
        if self._session is None:
            raise RuntimeError("GraphTransport is not open")
        headers = {"Accept": "application/json", "User-Agent": self._user_agent,
                   **dict(req.headers), **await self.auth.headers()}  # fmt: skip
        if mailbox:
            headers["X-AnchorMailbox"] = mailbox
        data = None
        if req.body is not None:
            data = json.dumps(req.body).encode()
            headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(
            total=self.limits.read_timeout_s, sock_connect=self.limits.connect_timeout_s
        )
        url = self.absolute(req.url)
        try:
            async with self._session.request(
                req.method, url, data=data, headers=headers, timeout=timeout
            ) as resp:
                body = await self._read_capped(resp)
                if resp.status == 401:
                    self.auth.invalidate()
                    raise AuthError("Graph refused our token (HTTP 401)", code="HTTP401")
                return RawResponse(resp.status, dict(resp.headers), body)
        except ExchangeError:
            raise
        except TimeoutError as exc:
            raise TransientError("request timed out", code="Timeout") from exc
        except aiohttp.ClientPayloadError as exc:
            raise TransientError(f"truncated answer: {exc}", code="PayloadError") from exc
        except (aiohttp.ClientError, OSError) as exc:
            msg = f"connection failed: {type(exc).__name__}"
            raise TransientError(msg, code="Network") from exc

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self.limits.max_response_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise ProtocolError(
                f"answer of {resp.content_length} bytes exceeds the cap", code="Size"
            )
        chunks = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            chunks.extend(chunk)
            if len(chunks) > cap:
                raise ProtocolError(f"answer exceeds the {cap}-byte cap", code="Size")
        return bytes(chunks)
