"""Compact JSON Web Tokens, as far as the simulated identity platform needs them.

The simulator signs its access tokens RS256 with a key of its own (one per process, made on
first use) and verifies clients' certificate assertions, RS256 or PS256, with the public key
of the registered certificate. Written here on `cryptography` alone: the simulator shares no
token code with the client or with msal.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

Json = dict[str, Any]


class MalformedToken(ValueError):
    """Not three base64url parts of JSON header, JSON claims and signature."""


@dataclass(frozen=True, slots=True)
class Jwt:
    header: Json
    claims: Json
    signing_input: bytes  # "header.claims", what the signature covers
    signature: bytes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise MalformedToken("not base64url") from exc


def parse(token: str) -> Jwt:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise MalformedToken("a JWT has three dot-separated parts")
    try:
        header, claims = (json.loads(unb64url(p)) for p in parts[:2])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedToken("the header or the claims are not JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedToken("the header and the claims are JSON objects")
    return Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode(), unb64url(parts[2]))


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    """The simulator's token-signing key: made once per process (about 50 ms)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_id() -> str:
    der = (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return b64url(hashlib.sha1(der).digest())  # noqa: S324 - an identifier, not a security hash


def sign(claims: Json) -> str:
    """An RS256 token signed with the simulator's key (kid names it in the published keys)."""
    kid = key_id()
    header = {"typ": "JWT", "alg": "RS256", "kid": kid, "x5t": kid}
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = signing_key().sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(signature)}"


def verify(token: Jwt, key: rsa.RSAPublicKey) -> bool:
    """Whether `token` is signed by `key` with the algorithm its header names (RS256, PS256)."""
    alg = token.header.get("alg")
    if alg == "RS256":
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
    elif alg == "PS256":
        # RFC 7518 section 3.5: MGF1 with SHA-256 and a salt as long as the hash.
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        return False
    try:
        key.verify(token.signature, token.signing_input, pad, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def public_jwk() -> Json:
    """The signing key as a JSON Web Key, for the `jwks_uri` of the OpenID configuration."""
    numbers = signing_key().public_key().public_numbers()

    def big(n: int) -> str:
        return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    kid = key_id()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "x5t": kid,
            "n": big(numbers.n), "e": big(numbers.e)}  # fmt: skip
