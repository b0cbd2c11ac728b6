"""benchmarks/sim_server.py: the per-mailbox tally counts what the simulator admitted, the
items it charged latency for and the requests in flight, over real HTTP to its own process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from benchmarks import stack

MAILBOX = stack.address_of(1)
SYNC = """<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
 <soap:Header>
  <t:RequestServerVersion Version="Exchange2013_SP1"/>
  <t:ExchangeImpersonation><t:ConnectingSID>
   <t:PrimarySmtpAddress>{mailbox}</t:PrimarySmtpAddress>
  </t:ConnectingSID></t:ExchangeImpersonation>
 </soap:Header>
 <soap:Body><m:SyncFolderItems>
  <m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>
  <m:SyncFolderId><t:DistinguishedFolderId Id="contacts"/></m:SyncFolderId>
  <m:MaxChangesReturned>100</m:MaxChangesReturned>
 </m:SyncFolderItems></soap:Body>
</soap:Envelope>"""


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    """One mailbox of 7 contacts, 100 ms per request, the default throttling."""
    proc, base = await stack.start_simulator(1, (7, 0, 0), latency="100,0")
    try:
        yield base
    finally:
        proc.stop()


async def _sync_calls(base: str, count: int) -> list[str]:
    body = SYNC.format(mailbox=MAILBOX).encode()
    headers = {
        "Authorization": aiohttp.encode_basic_auth(stack.SIM_USER, stack.SIM_PASSWORD),
        "Content-Type": "text/xml; charset=utf-8",
        "X-AnchorMailbox": MAILBOX,
    }
    async with aiohttp.ClientSession() as http:

        async def one() -> str:
            url = f"{base}/EWS/Exchange.asmx"
            async with http.post(url, data=body, headers=headers) as resp:
                return await resp.text()

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_concurrent_requests_are_tallied_with_their_items_and_peak(simulator: str) -> None:
    answers = await _sync_calls(simulator, 3)
    assert all('ResponseClass="Success"' in a for a in answers)
    tally = (await stack.sim_tallies(simulator))[MAILBOX]
    assert tally["requests"] == 3
    assert tally["items"] == 3 * 7  # a first sync returns every contact
    assert tally["peak_in_flight"] == 3
    assert tally["in_flight"] == 0
    # Three requests of >= 100 ms each, all in flight together.
    assert 0.3 <= tally["busy_s"] <= 3 * (tally["last_s"] - tally["first_s"]) + 1e-6


async def test_a_refused_request_is_not_tallied(simulator: str) -> None:
    # Six sync calls at once: the simulator admits its five concurrent sync calls and
    # answers the sixth ErrorServerBusy.
    answers = await _sync_calls(simulator, 6)
    assert sum("ErrorServerBusy" in a for a in answers) == 1
    counters = await stack.sim_counters(simulator)
    tally = (await stack.sim_tallies(simulator))[MAILBOX]
    assert counters["requests"]["SyncFolderItems"] == 6
    assert sum(counters["throttled"].values()) == 1
    assert tally["requests"] == 5 and tally["items"] == 5 * 7 and tally["peak_in_flight"] == 5
