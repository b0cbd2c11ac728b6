"""App credentials for the simulated directory: a self-signed RSA certificate an application
registers (its public half goes to `GraphPolicy.client_certificates`, the PEM of key and
certificate to the application), and the registered certificates' thumbprints."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .jws import b64url


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    certificate_pem: str  # what the directory registers
    private_key_pem: str  # what only the application holds

    @property
    def combined_pem(self) -> str:
        """Key and certificate in one PEM file, as a server's `certificate_file` holds them."""
        return self.private_key_pem + self.certificate_pem


def make_client_certificate(name: str = "sim-sync-app", days: int = 365) -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ClientCertificate(
        cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
    )


@dataclass(frozen=True, slots=True)
class Registered:
    """A registered certificate, found by either thumbprint an assertion header may carry."""

    x5t: str  # base64url SHA-1 of the DER certificate
    x5t_s256: str  # base64url SHA-256
    public_key: rsa.RSAPublicKey


@functools.lru_cache(maxsize=64)
def registered(pem: str) -> Registered | None:
    """The registered certificate of `pem`; None when it holds no RSA certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - the x5t header is defined as SHA-1
    return Registered(b64url(sha1), b64url(cert.fingerprint(hashes.SHA256())), key)
