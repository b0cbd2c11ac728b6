"""Client-certificate credentials: msal signs the assertion with the certificate's key, the
simulator verifies it against the registered certificate and issues the token."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import msal
import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ews_client.errors import AuthError
from ews_client.io.auth import OAuthClientCredentials
from ews_client.io.graph import GraphClient
from ews_client.simulator.config import GraphPolicy, SimulatorConfig
from ews_client.simulator.graph.credentials import ClientCertificate, make_client_certificate
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX, GRAPH_SCOPE
from .test_auth_tokens import claims_of


@pytest.fixture(scope="module")
def registered() -> ClientCertificate:
    return make_client_certificate()


@pytest.fixture
async def sim(registered: ClientCertificate) -> AsyncIterator[RunningSimulator]:
    policy = GraphPolicy(client_certificates=(registered.certificate_pem,))
    async with running_simulator(SimulatorConfig(graph=policy), tls=True) as running:
        running.sim.add_numbered(1)
        yield running


def certificate_auth(sim: RunningSimulator, pem: bytes) -> OAuthClientCredentials:
    return OAuthClientCredentials(
        authority=sim.authority, client_id=sim.client_id, certificate_pem=pem,
        scope=GRAPH_SCOPE, ca_file=sim.ca_file,
    )  # fmt: skip


async def test_certificate_credentials_obtain_a_graph_token(
    sim: RunningSimulator, registered: ClientCertificate
) -> None:
    creds = certificate_auth(sim, registered.combined_pem.encode())
    cert = x509.load_pem_x509_certificate(registered.certificate_pem.encode())
    assert creds.thumbprint == cert.fingerprint(hashes.SHA256()).hex()
    assert "PRIVATE" not in repr(creds)
    async with GraphClient(sim.graph_url, creds, ca_file=sim.ca_file) as client:
        assert await client.read_marker(BOX) is None  # a Graph call went through
        token = (await creds.headers())["Authorization"].removeprefix("Bearer ")
    claims = claims_of(token)
    assert claims["aud"] == "https://graph.microsoft.com" and claims["appid"] == sim.client_id
    assert claims["appidacr"] == "2"  # authenticated by certificate


async def test_a_sha1_thumbprint_rs256_assertion_is_accepted_too(
    sim: RunningSimulator, registered: ClientCertificate
) -> None:
    """msal's older form (a SHA-1 `thumbprint`: RS256, header x5t) is verified as well."""
    cert = x509.load_pem_x509_certificate(registered.certificate_pem.encode())
    credential = {
        "private_key": registered.private_key_pem,
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # x5t is SHA-1
    }

    def acquire() -> dict[str, object]:
        session = requests.Session()
        session.trust_env, session.verify = False, sim.ca_file or True
        try:
            app = msal.ConfidentialClientApplication(
                sim.client_id, client_credential=credential, authority=sim.authority,
                http_client=session, instance_discovery=False,
            )  # fmt: skip
            token: dict[str, object] = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
            return token
        finally:
            session.close()

    # msal blocks (its constructor reads the OpenID configuration): in a thread, so that the
    # simulator on this event loop can answer.
    result = await asyncio.to_thread(acquire)
    assert "access_token" in result, result
    assert claims_of(str(result["access_token"]))["appidacr"] == "2"


async def test_an_unregistered_certificate_is_refused(sim: RunningSimulator) -> None:
    stranger = make_client_certificate("someone-else")
    creds = certificate_auth(sim, stranger.combined_pem.encode())
    with pytest.raises(AuthError) as refused:
        await creds.headers()
    creds.close()
    assert refused.value.code == "invalid_client"
    assert "not registered" in str(refused.value)


async def test_the_directory_answers_to_its_id_as_to_its_name(
    sim: RunningSimulator, registered: ClientCertificate
) -> None:
    """The assertion's audience is the token endpoint the client was pointed at: under the
    tenant's id it is that URL, and the simulator checks it against the path it serves."""
    tenant_id = sim.sim.config.graph.tenant_id
    by_id = dataclasses.replace(sim, authority=f"{sim.url}/{tenant_id}")
    creds = certificate_auth(by_id, registered.combined_pem.encode())
    token = (await creds.headers())["Authorization"].removeprefix("Bearer ")
    creds.close()
    assert claims_of(token)["tid"] == tenant_id


def test_unusable_certificate_files_say_what_is_wrong(registered: ClientCertificate) -> None:
    key_pem = registered.private_key_pem
    encrypted = (
        serialization.load_pem_private_key(key_pem.encode(), None)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
        .decode()
    )
    tls_leaf = trustme.CA().issue_cert("x.example")  # an EC key with its certificate
    cases = {
        "no private key": registered.certificate_pem,
        "no certificate": key_pem,
        "encrypted": encrypted + registered.certificate_pem,
        "non-RSA": tls_leaf.private_key_and_cert_chain_pem.bytes().decode(),
        "no certificate of its private key": key_pem + make_client_certificate().certificate_pem,
        "unreadable": "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n"
        + registered.certificate_pem,
    }
    for expected, pem in cases.items():
        with pytest.raises(AuthError) as refused:
            OAuthClientCredentials(
                authority="https://login.example/t", client_id="c", certificate_pem=pem.encode()
            )
        message = str(refused.value)
        assert refused.value.code == "ClientCertificate", expected
        assert expected in message, (expected, message)
        assert "MII" not in message and "PRIVATE KEY-----" not in message  # no key material
    with pytest.raises(ValueError, match="either"):
        OAuthClientCredentials(authority="https://login.example/t", client_id="c")
