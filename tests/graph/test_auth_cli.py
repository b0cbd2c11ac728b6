"""`python -m ews_client.simulator`: HTTPS with a CA written to a file, and the start-up facts
an msal application needs, as text or JSON; an application pointed at them gets tokens (with
the secret and with the registered client certificate) and Graph answers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ews_client.io.auth import OAuthClientCredentials
from ews_client.io.graph import GraphClient

from .conftest import GRAPH_SCOPE
from .test_auth_tokens import claims_of


@asynccontextmanager
async def simulator(*args: str) -> AsyncIterator[list[str]]:
    """The simulator as a process on a free port; yields its first lines of output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ews_client.simulator", "--port", "0", "--mailboxes", "2", *args,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        lines = [first]
        if not first.startswith("{"):
            while not lines[-1].startswith("mailboxes:"):
                lines.append((await asyncio.wait_for(proc.stdout.readline(), 5)).decode())
        yield [line.rstrip("\n") for line in lines]
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0  # SIGTERM: a clean stop


async def test_tls_json_facts_let_msal_apps_in(tmp_path: Path) -> None:
    ca, cert = tmp_path / "ca.pem", tmp_path / "client.pem"
    async with simulator(
        "--tls", "--ca-out", str(ca), "--client-cert-out", str(cert), "--json"
    ) as lines:
        facts: dict[str, Any] = json.loads(lines[0])
        assert facts["ca_file"] == str(ca) and ca.read_text().startswith("-----BEGIN CERTIFICATE")
        assert facts["graph_url"].startswith("https://127.0.0.1:")
        assert facts["authority"] == facts["graph_url"].replace("/v1.0", f"/{facts['tenant']}")
        assert facts["ews_url"].endswith("/EWS/Exchange.asmx")
        assert cert.stat().st_mode & 0o077 == 0  # the key file is the owner's only
        box = facts["mailboxes"][0]
        for creds in (
            OAuthClientCredentials(
                authority=facts["authority"], client_id=facts["client_id"],
                client_secret=facts["client_secret"], scope=GRAPH_SCOPE, ca_file=str(ca),
            ),
            OAuthClientCredentials(
                authority=facts["authority"], client_id=facts["client_id"],
                certificate_pem=cert.read_bytes(), scope=GRAPH_SCOPE, ca_file=str(ca),
            ),
        ):  # fmt: skip
            async with GraphClient(facts["graph_url"], creds, ca_file=str(ca)) as client:
                assert await client.read_marker(box) is None
                token = (await creds.headers())["Authorization"].removeprefix("Bearer ")
            assert claims_of(token)["tid"] == facts["tenant_id"]


async def test_text_facts_keep_the_ews_line_first() -> None:
    """deploy/demo.py and the benchmarks read the first line: `EWS simulator: <url>`."""
    async with simulator() as lines:
        assert lines[0].startswith("EWS simulator: http://127.0.0.1:")
        named = dict(line.split(": ", 1) for line in lines[1:-2])
        assert set(named) == {"Graph base URL", "token authority", "tenant", "client id",
                              "client secret"}  # fmt: skip
        assert named["Graph base URL"].endswith("/v1.0")
        assert lines[-2].startswith("service account: ") and lines[-1].startswith("mailboxes: ")
