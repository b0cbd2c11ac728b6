"""The Microsoft identity platform, as far as msal's client-credentials flow needs it:
`/<tenant>/v2.0/.well-known/openid-configuration` and `/<tenant>/oauth2/v2.0/token`.

Tokens are opaque to clients: an HMAC-signed expiry, checked on every Graph request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from aiohttp import web

from ..config import GraphPolicy

_SECRET = b"graph-simulator-token"


def issue(policy: GraphPolicy, now: float) -> str:
    payload = f"{policy.tenant}:{int(now) + policy.token_lifetime_s}".encode()
    tag = hmac.new(_SECRET, payload, hashlib.sha256).hexdigest()[:32]
    return base64.urlsafe_b64encode(payload).decode() + "." + tag


def valid(policy: GraphPolicy, header: str, now: float) -> bool:
    if not header.startswith("Bearer "):
        return False
    body, _, tag = header[7:].partition(".")
    try:
        payload = base64.urlsafe_b64decode(body.encode())
        tenant, expires = payload.decode().rsplit(":", 1)
        expected = hmac.new(_SECRET, payload, hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(tag, expected) and tenant == policy.tenant and now < int(expires)
    except (ValueError, UnicodeDecodeError):
        return False


def add_auth_routes(app: web.Application, policy: GraphPolicy) -> None:
    tenant = policy.tenant

    async def openid(request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}/{tenant}"
        return _closing(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
        )

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        ok_id = hmac.compare_digest(str(form.get("client_id", "")), policy.client_id)
        ok_secret = hmac.compare_digest(str(form.get("client_secret", "")), policy.client_secret)
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
        if not (ok_id and ok_secret):
            return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
        if not str(form.get("scope", "")).endswith("/.default"):
            return _oauth_error(400, "invalid_scope", "AADSTS1002012: scope must be /.default")
        life = policy.token_lifetime_s
        return _closing(
            {
                "token_type": "Bearer",
                "expires_in": life,
                "ext_expires_in": life,
                "access_token": issue(policy, time.time()),
            }
        )

    app.router.add_get(f"/{tenant}/v2.0/.well-known/openid-configuration", openid)
    app.router.add_post(f"/{tenant}/oauth2/v2.0/token", token)


def _closing(body: Mapping[str, object], status: int = 200) -> web.Response:
    # msal's blocking requests session would keep an idle connection that outlives the
    # simulator: these rare calls close theirs.
    resp = web.json_response(body, status=status)
    resp.force_close()
    return resp


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    body = {"error": error, "error_description": description, "error_codes": [status]}
    return _closing(body, status)
