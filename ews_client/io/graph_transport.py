"""HTTP for one Graph endpoint: one aiohttp session, pool limits, timeouts, TLS, a size cap.

Foreign exceptions are translated by the shared table in `failures.py`; HTTP statuses are left to
the caller (`responses.error_for`) so that `$batch` inner answers map the same way, but for a
redirect, refused here (never followed, like every connection under the outbound policy: see
`transport.HttpSession`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from ews_client.errors import AuthError, ProtocolError
from ews_client.graph.requests import GraphRequest, with_immutable_ids
from ews_client.io.auth import Auth
from ews_client.io.failures import raise_translated
from ews_client.io.outbound import OutboundPolicy
from ews_client.io.transport import HttpSession, TransportLimits, refuse_redirect


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class GraphTransport(HttpSession):
    """Sends `GraphRequest`s to one Graph root (e.g. https://graph.microsoft.com/v1.0)."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        *,
        limits: TransportLimits | None = None,
        ca_file: str | None = None,
        user_agent: str = "crm-exchange-sync/0.1",
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        super().__init__(self.base_url, auth, limits, ca_file, user_agent, outbound)

    def absolute(self, url: str) -> str:
        """Our URL for a request; next/delta links must point at the same root, so that the
        bearer token is never sent to another host."""
        if url.startswith("/"):
            return self.base_url + url
        if not url.startswith(self.base_url + "/"):
            raise ProtocolError(f"link outside the Graph root: {url[:80]!r}", code="Link")
        return url

    async def send(self, req: GraphRequest, mailbox: str | None) -> RawResponse:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent,
                   **dict(req.headers), **await self.auth.headers()}  # fmt: skip
        headers["Prefer"] = with_immutable_ids(headers.get("Prefer"))
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
            async with self.session_for(url).request(
                req.method, url, data=data, headers=headers, timeout=timeout,
                allow_redirects=False,
            ) as resp:  # fmt: skip
                refuse_redirect(resp)
                body = await self._read_capped(resp)
                if resp.status == 401:
                    self.auth.invalidate()
                    raise AuthError("Graph refused our token (HTTP 401)", code="HTTP401")
                return RawResponse(resp.status, dict(resp.headers), body)
        except Exception as exc:
            raise_translated(exc, "request")
