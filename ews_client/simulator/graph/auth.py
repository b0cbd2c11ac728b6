"""The Microsoft identity platform, as far as an app-only client needs it, and Graph's checks
of the tokens it issues.

- `/<tenant>/v2.0/.well-known/openid-configuration`, `/<tenant>/discovery/v2.0/keys` and
  `/<tenant>/oauth2/v2.0/token` (client credentials, with the client secret or a certificate
  assertion), answering to the tenant's name and to its id.
- Tokens are RS256 JWTs carrying `aud` (the resource of the requested `<resource>/.default`
  scope), `iss`, `tid`, `appid` / `azp`, `roles` (the app's granted permissions), `iat`,
  `nbf` and `exp`.
- Every Graph request is refused with Graph's 401 body unless its token is well formed,
  signed by the simulator, meant for Graph and alive; each call (top level or inside a
  `$batch`) is refused 403 unless the token's roles grant the permission it needs.

ews_client/PROTOCOL_NOTES.md, "Graph tokens" and "Graph permissions".
"""

from __future__ import annotations

import contextvars
import functools
import hmac
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from ..config import GraphPolicy
from . import credentials, jws, permissions
from .errors import GraphError

Json = dict[str, Any]
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_GRANTED: contextvars.ContextVar[Json | None] = contextvars.ContextVar("graph_token", default=None)
_ACCESS_DENIED = "Access is denied. Check credentials and try again."
# Graph names its application id as the client of its challenge.
_CHALLENGE = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
              'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"')  # fmt: skip


class TokenRefused(Exception):
    """The bearer token is unusable; the message is what Graph says about it."""


class GraphAuthError(GraphError):
    """A Graph refusal whose body carries `innerError` (date, request-id, client-request-id)
    and whose answer the matching headers, as Graph's 401 and 403 answers do."""

    def __init__(self, status: int, code: str, message: str, client_request_id: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.client_request_id = client_request_id or self.request_id
        self.date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        headers = {"request-id": self.request_id, "client-request-id": self.client_request_id}
        if status == 401:
            headers["WWW-Authenticate"] = _CHALLENGE
        super().__init__(status, code, message, headers)

    def body(self) -> dict[str, Any]:
        inner = {"date": self.date, "request-id": self.request_id,
                 "client-request-id": self.client_request_id}  # fmt: skip
        return {"error": {"code": self.code, "message": str(self), "innerError": inner}}


# -- tokens ---------------------------------------------------------------------------------------
def issue(
    policy: GraphPolicy,
    resource: str,
    now: float,
    *,
    certificate: bool = False,
    lifetime_s: int | None = None,
) -> str:
    """An app-only access token for `resource`, as Entra ID's v1 tokens for Graph look."""
    issued = int(now)
    cid = policy.client_id
    claims: Json = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{policy.tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + (policy.token_lifetime_s if lifetime_s is None else lifetime_s),
        "appid": cid,
        "azp": cid,
        "appidacr": "2" if certificate else "1",  # 1: client secret, 2: certificate
        "idtyp": "app",
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{policy.tenant_id}:{cid}")),
        "roles": list(policy.roles),
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{policy.tenant_id}:{cid}")),
        "tid": policy.tenant_id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
    }
    return jws.sign(claims)


@functools.lru_cache(maxsize=256)
def _signed_claims(token: str) -> Json | None:
    """The claims of a token the simulator signed; None when it did not (or it is no JWT).

    Cached: a client sends the same token with every request until it renews it."""
    parsed = jws.parse(token)
    if parsed.header.get("kid") != jws.key_id():
        return None
    return parsed.claims if jws.verify(parsed, jws.signing_key().public_key()) else None


def check(policy: GraphPolicy, header: str, now: float) -> Json:
    """The claims of the request's bearer token, or TokenRefused with Graph's reason."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("Access token is empty.")
    try:
        claims = _signed_claims(token.strip())
    except jws.MalformedToken:
        raise TokenRefused("CompactToken parsing failed with error code: 80049217") from None
    if claims is None:
        raise TokenRefused("Access token validation failure. Invalid signature.")
    if claims.get("tid") != policy.tenant_id:
        raise TokenRefused("Access token validation failure. Invalid issuer.")
    if claims.get("aud") not in policy.audiences:
        raise TokenRefused("Access token validation failure. Invalid audience.")
    if not now < _number(claims.get("exp")):
        raise TokenRefused("Lifetime validation failed, the token is expired.")
    if now < _number(claims.get("nbf")):
        raise TokenRefused("Lifetime validation failed, the token is not yet valid.")
    return claims


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def refusal(policy: GraphPolicy, request: web.Request) -> web.Response | None:
    """Graph's 401 answer when the request's token is refused; else None, and the token's
    claims are what `authorize` judges this request's calls by."""
    try:
        claims = check(policy, request.headers.get("Authorization", ""), time.time())
    except TokenRefused as exc:
        err = GraphAuthError(401, "InvalidAuthenticationToken", str(exc),
                             request.headers.get("client-request-id", ""))  # fmt: skip
        return web.json_response(err.body(), status=401, headers=err.headers)
    _GRANTED.set(claims)
    return None


def authorize(
    method: str, path: str, body: Any, headers: Mapping[str, str], subscriptions: Mapping[str, Any]
) -> None:
    """Raise Graph's 403 when the current token lacks the permission this call needs.

    `subscriptions` maps subscription ids to objects with a `resource`. A call made without
    a checked token (not through the endpoint) is not judged."""
    claims = _GRANTED.get()
    if claims is None:
        return

    def watched(sub_id: str) -> str | None:
        sub = subscriptions.get(sub_id)
        return str(getattr(sub, "resource", "") or "") or None

    needed = permissions.required(method, path, body, watched)
    roles = claims.get("roles") or ()
    if needed is not None and not permissions.granted(roles, needed):
        raise GraphAuthError(403, "ErrorAccessDenied", _ACCESS_DENIED,
                             headers.get("client-request-id", ""))  # fmt: skip


# -- the identity platform --------------------------------------------------------------------
def add_auth_routes(app: web.Application, policy: GraphPolicy) -> None:
    for tenant in dict.fromkeys((policy.tenant, policy.tenant_id)):
        app.router.add_get(f"/{tenant}/v2.0/.well-known/openid-configuration", _openid)
        app.router.add_get(f"/{tenant}/discovery/v2.0/keys", _keys)
        app.router.add_post(f"/{tenant}/oauth2/v2.0/token", functools.partial(_token, policy))


def _authority(request: web.Request) -> str:
    """`scheme://host/<tenant>` as the client named it (by the tenant's name or id)."""
    tenant = request.path.strip("/").split("/", 1)[0]
    return f"{request.scheme}://{request.host}/{tenant}"


async def _openid(request: web.Request) -> web.Response:
    base = _authority(request)
    return _closing(
        {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }
    )


async def _keys(request: web.Request) -> web.Response:
    return _closing({"keys": [jws.public_jwk()]})


async def _token(policy: GraphPolicy, request: web.Request) -> web.Response:
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "AADSTS70003: only client_credentials")
    if not hmac.compare_digest(str(form.get("client_id", "")), policy.client_id):
        return _oauth_error(
            400, "unauthorized_client", "AADSTS700016: the application was not found"
        )
    endpoint = f"{_authority(request)}/oauth2/v2.0/token"
    problem, certificate = _client_credential(policy, form, endpoint, time.time())
    if problem:
        return _oauth_error(401, "invalid_client", problem)
    scopes = str(form.get("scope", "")).split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return _oauth_error(400, "invalid_scope", "AADSTS1002012: one scope, <resource>/.default")
    resource = scopes[0].removesuffix("/.default")
    if resource not in policy.resources:
        return _oauth_error(
            400, "invalid_resource", f"AADSTS500011: resource {resource} not in the tenant"
        )
    life = policy.token_lifetime_s
    return _closing(
        {
            "token_type": "Bearer",
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": issue(policy, resource, time.time(), certificate=certificate),
        }
    )


def _client_credential(
    policy: GraphPolicy, form: MultiDictProxy[Any], endpoint: str, now: float
) -> tuple[str, bool]:
    """(what is wrong with the client's credential or "", whether it was a certificate)."""
    assertion = form.get("client_assertion")
    if assertion is not None:
        if form.get("client_assertion_type") != JWT_BEARER:
            return f"AADSTS700024: client_assertion_type must be {JWT_BEARER}", True
        return _assertion_problem(policy, str(assertion), endpoint, now), True
    secret = form.get("client_secret")
    if secret is None:
        return "AADSTS7000218: send client_assertion or client_secret", False
    if not hmac.compare_digest(str(secret), policy.client_secret):
        return "AADSTS7000215: Invalid client secret provided.", False
    return "", False


def _assertion_problem(policy: GraphPolicy, assertion: str, endpoint: str, now: float) -> str:
    """ "" when `assertion` is a live JWT for `endpoint`, issued by the client about itself and
    signed by the key of one of its registered certificates; else what is wrong."""
    try:
        token = jws.parse(assertion)
    except jws.MalformedToken as exc:
        return f"AADSTS50027: the client assertion is not a JWT ({exc})"
    cert = _certificate_of(policy, token.header)
    if cert is None:
        return "AADSTS700027: the certificate that signed the assertion is not registered"
    if not jws.verify(token, cert.public_key):
        return "AADSTS700027: the client assertion failed signature validation"
    claims = token.claims
    if claims.get("aud") != endpoint:
        return f"AADSTS700021: the client assertion's audience must be {endpoint}"
    if not (claims.get("iss") == claims.get("sub") == policy.client_id):
        return "AADSTS700021: the client assertion's iss and sub must be the client id"
    if not now < _number(claims.get("exp")) or now + 300 < _number(claims.get("nbf")):
        return "AADSTS700024: the client assertion is not within its valid time range"
    return ""


def _certificate_of(policy: GraphPolicy, header: Json) -> credentials.Registered | None:
    # Clients differ on base64url padding of the thumbprints (msal keeps it): compare without.
    s256, sha1 = (str(header.get(name) or "").rstrip("=") for name in ("x5t#S256", "x5t"))
    for pem in policy.client_certificates:
        cert = credentials.registered(pem)
        if cert is not None and (s256 == cert.x5t_s256 or sha1 == cert.x5t):
            return cert
    return None


def _closing(body: Mapping[str, object], status: int = 200) -> web.Response:
    # msal's blocking requests session would keep an idle connection that outlives the
    # simulator: these rare calls close theirs.
    resp = web.json_response(body, status=status)
    resp.force_close()
    return resp


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    code = int(description[7:].split(":", 1)[0]) if description.startswith("AADSTS") else 0
    body = {"error": error, "error_description": description, "error_codes": [code]}
    return _closing(body, status)
