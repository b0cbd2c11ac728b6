"""The simulator as its own process (`python -m ews_client.simulator --json`), provisioned and
edited through its /_sim/ admin API as a real deployment's Exchange would be by its users."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from tests.scale.cpu import cpu_s


@dataclass
class SimProcess:
    name: str
    popen: subprocess.Popen[str]
    facts: dict[str, Any]
    base: str  # scheme://host:port
    log: TextIO
    tls: ssl.SSLContext | bool = True  # what the admin calls verify the server with

    @property
    def admin(self) -> str:
        return f"{self.base}/_sim"

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self.log.close()

    def cpu_s(self) -> float:
        return cpu_s(self.popen.pid)


def start_simulator(
    name: str, logs: Path, *, tls: bool, latency: str = "0", validation: bool = False
) -> SimProcess:
    """Start one simulator on a free port (it picks it: --port 0) and read its start-up facts."""
    argv = [sys.executable, "-m", "ews_client.simulator", "--port", "0", "--mailboxes", "0",
            "--json", "--latency-ms", latency]  # fmt: skip
    if not validation:
        argv.append("--no-validation")  # the XSD checks cost CPU the replicas need here
    if tls:
        argv += ["--tls", "--ca-out", str(logs / f"{name}-ca.pem")]
    log = (logs / f"{name}.log").open("w")
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    line: list[str] = []
    reader = threading.Thread(
        target=lambda: line.append(popen.stdout.readline() if popen.stdout else "")
    )
    reader.start()
    reader.join(60)
    if not line or not line[0].strip():
        popen.kill()
        popen.wait(5)
        log.close()
        raise AssertionError(
            f"simulator {name} did not start: {(logs / f'{name}.log').read_text()}"
        )
    facts = json.loads(line[0])
    base = facts["ews_url"].rsplit("/EWS/", 1)[0]
    ca = facts.get("ca_file")
    return SimProcess(
        name, popen, facts, base, log, ssl.create_default_context(cafile=ca) if ca else True
    )


async def provision(http: aiohttp.ClientSession, sim: SimProcess, first: int, count: int,
                    per_folder: int) -> list[str]:  # fmt: skip
    """Mailboxes user{first:05d}.. with `per_folder` seeded items in each folder."""
    body = {"count": count, "first": first, "items_per_folder": per_folder}
    async with http.post(f"{sim.admin}/mailboxes", json=body, ssl=sim.tls) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["created"])


async def items(http: aiohttp.ClientSession, sim: SimProcess, email: str) -> list[dict[str, Any]]:
    async with http.get(f"{sim.admin}/mailboxes/{email}/items", ssl=sim.tls) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["items"])


async def owner(
    http: aiohttp.ClientSession, sim: SimProcess, method: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The mailbox owner's edit in Outlook."""
    async with http.request(method, f"{sim.admin}{path}", json=body, ssl=sim.tls) as resp:
        assert resp.status < 300, await resp.text()
        return dict(await resp.json())
