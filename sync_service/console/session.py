"""The console's sessions: a signed cookie, its CSRF token, sign-out, and the sign-in nonce.

A session is a cookie the browser cannot read (HttpOnly) nor send from another site
(SameSite=Strict), Secure when the console is reached over TLS. Its value is signed with HMAC-
SHA256 under a key derived from the API token: nobody without the token can forge one, every
replica behind a load balancer accepts it, and a new token ends every session at once. It
expires SESSION_TTL after sign-in. Signing out ends it in this process (its id is kept as
revoked until it would have expired anyway) and removes the cookie.

The CSRF token travels inside the signed cookie and in every form; a POST whose form does not
carry the token of its session is refused. The sign-in form, before any session exists,
carries a nonce that must equal the one of a short-lived cookie set with the form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_COOKIE = "sync_console"
SIGNIN_COOKIE = "sync_console_signin"
SESSION_TTL = 8 * 3600  # seconds: a working day, then the token is asked for again
SIGNIN_TTL = 600  # seconds to fill in the sign-in form
_KEY_LABEL = b"sync-service console session key v1"
_VERSION = "v1"
MAX_REVOKED = 100_000  # sign-outs remembered at once; memory stays bounded


@dataclass(frozen=True, slots=True)
class Session:
    sid: str  # random: names the session for sign-out
    csrf: str  # random: every state-changing form carries it
    expires: int  # Unix time


def session_key(token: bytes) -> bytes:
    """The signing key of sessions: derived from the API token, never the token itself."""
    return hmac.new(token, _KEY_LABEL, hashlib.sha256).digest()


def new_session(now: float) -> Session:
    return Session(secrets.token_hex(16), secrets.token_urlsafe(32), int(now) + SESSION_TTL)


def encode(session: Session, key: bytes) -> str:
    payload = json.dumps({"sid": session.sid, "csrf": session.csrf, "exp": session.expires})
    body = _b64(payload.encode())
    return f"{_VERSION}.{body}.{_b64(_sign(key, body))}"


def decode(value: str | None, key: bytes, now: float) -> Session | None:
    """The session a cookie value holds, or None: unsigned, tampered, malformed or expired."""
    if not value or value.count(".") != 2:
        return None
    version, body, signature = value.split(".")
    if version != _VERSION:
        return None
    try:
        given = _unb64(signature)
    except ValueError:
        return None
    if not hmac.compare_digest(given, _sign(key, body)):
        return None
    try:
        raw = json.loads(_unb64(body))
        session = Session(str(raw["sid"]), str(raw["csrf"]), int(raw["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None


def csrf_matches(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(
        session.csrf.encode(), str(presented).encode("utf-8", "surrogateescape")
    )


def nonce_matches(cookie: str | None, presented: str | None) -> bool:
    """The sign-in form's nonce equals its cookie's (both present)."""
    if not cookie or not presented:
        return False
    return hmac.compare_digest(cookie.encode(), presented.encode("utf-8", "surrogateescape"))


def token_matches(token: bytes, presented: str) -> bool:
    """The API token, compared in constant time (surrounding blanks of a paste ignored)."""
    return hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), token)


class Revoked:
    """Session ids signed out in this process, each until it would have expired."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[str, int] = {}

    def add(self, session: Session) -> None:
        self._expire()
        if len(self._until) < MAX_REVOKED:
            self._until[session.sid] = session.expires

    def __contains__(self, session: Session) -> bool:
        return session.sid in self._until

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s for s, until in self._until.items() if until <= now]:
            del self._until[sid]


def _sign(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
