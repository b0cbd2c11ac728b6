"""Capacity of the EWS simulator itself: no-change SyncFolderItems/s and 10-item GetItem/s.

Starts the simulator as its own process (throttling off, XSD validation of requests off: the
benchmark profile) and drives it over HTTP with raw aiohttp requests built here. Prints the
figures and writes them as JSON (default: benchmarks/simulator_capacity.json).

    .venv/bin/python benchmarks/simulator_capacity.py [--seconds 5] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import aiohttp

NS = (
    'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
)
MAILBOXES = 50


def envelope(mailbox: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope {NS}><s:Header>'
        '<t:RequestServerVersion Version="Exchange2013_SP1"/><t:ExchangeImpersonation>'
        f"<t:ConnectingSID><t:PrimarySmtpAddress>{mailbox}</t:PrimarySmtpAddress>"
        f"</t:ConnectingSID></t:ExchangeImpersonation></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def sync_body(state: str | None) -> str:
    st = f"<m:SyncState>{state}</m:SyncState>" if state else ""
    return (
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        f'<m:SyncFolderId><t:DistinguishedFolderId Id="contacts"/></m:SyncFolderId>{st}'
        "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>"
    )


def get_body(ids: list[str]) -> str:
    refs = "".join(f'<t:ItemId Id="{i}"/>' for i in ids)
    return (
        "<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape>"
        f"<m:ItemIds>{refs}</m:ItemIds></m:GetItem>"
    )


async def post(session: aiohttp.ClientSession, url: str, mailbox: str, body: str) -> str:
    headers = {"X-AnchorMailbox": mailbox, "Content-Type": "text/xml; charset=utf-8"}
    async with session.post(url, data=envelope(mailbox, body), headers=headers) as resp:
        text = await resp.text()
        if resp.status != 200 or "NoError" not in text:
            raise RuntimeError(f"unexpected answer {resp.status}: {text[:300]}")
        return text


async def rate(
    seconds: float, concurrency: int, work: list[tuple[str, str]], call: object
) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            mailbox, body = work[(n + done) % len(work)]
            await call(mailbox, body)  # type: ignore[operator]
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done / (time.perf_counter() - start)


async def measure(
    url: str, user: str, password: str, seconds: float, concurrency: int
) -> dict[str, float]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Basic {token}"}
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        boxes = [f"user{n:05d}@sim.example" for n in range(1, MAILBOXES + 1)]
        syncs, gets = [], []
        for box in boxes:
            text = await post(session, url, box, sync_body(None))
            state = re.search(r"<m:SyncState>([^<]+)<", text)
            assert state is not None
            syncs.append((box, sync_body(state.group(1))))
            ids = re.findall(r'ItemId Id="([^"]+)"', text)[:10]
            gets.append((box, get_body(ids)))

        async def call(mailbox: str, body: str) -> None:
            await post(session, url, mailbox, body)

        await rate(1.0, concurrency, syncs, call)  # warm-up
        sync_rate = await rate(seconds, concurrency, syncs, call)
        get_rate = await rate(seconds, concurrency, gets, call)
    return {"no_change_sync_per_s": round(sync_rate, 1), "get_item_10_per_s": round(get_rate, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=8961)
    default_out = os.path.join(os.path.dirname(__file__), "simulator_capacity.json")
    parser.add_argument("--out", default=default_out)
    args = parser.parse_args()
    cmd = [
        sys.executable, "-m", "ews_client.simulator", "--port", str(args.port),
        "--mailboxes", str(MAILBOXES), "--items-per-folder", "10",
        "--no-throttling", "--no-validation", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        # With --json the simulator prints its start-up facts as one JSON object.
        facts = json.loads(proc.stdout.readline())
        user, password = facts["username"], facts["password"]
        url = f"http://127.0.0.1:{args.port}/EWS/Exchange.asmx"
        time.sleep(1.0)
        figures = asyncio.run(measure(url, user, password, args.seconds, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(10)
    report = {
        **figures,
        "profile": "throttling off, request XSD validation off, simulator process on 1 core",
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(report, indent=2))
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
