"""Refused impersonation and mailbox moves, set through the admin API and the command line:
the answers Exchange gives (a SOAP fault; per-message errors that stop the batch)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX
from .helpers import Endpoint, Target, call, get_item_body

OTHER = "user00002@sim.example"
GET_CONTACTS = (
    "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
    '<m:FolderIds><t:DistinguishedFolderId Id="contacts"/></m:FolderIds></m:GetFolder>'
)


async def _admin(
    session: aiohttp.ClientSession, sim: Target, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with session.put(f"{sim.admin_url}/mailboxes/{path}", json=body) as resp:
        if resp.content_type not in ("application/json", "application/problem+json"):
            return resp.status, {"text": await resp.text()}
        return resp.status, await resp.json(content_type=None)


def _ids(sim: RunningSimulator, address: str) -> list[tuple[str, str]]:
    return [(i.id, i.change_key) for i in sim.sim.mailboxes[address].items.values()][:3]


async def test_refused_impersonation_is_a_fault_for_that_mailbox_only(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    status, body = await _admin(session, sim, f"{BOX}/impersonation", {"refused": True})
    assert status == 200 and body == {"address": BOX, "impersonation": "refused", "move": "none"}
    refused = await call(session, sim, GET_CONTACTS, BOX)
    assert refused.status == 500 and refused.fault_code == "ErrorImpersonateUserDenied"
    assert refused.text("//faultcode") == "a:ErrorImpersonateUserDenied"
    assert (await call(session, sim, GET_CONTACTS, OTHER)).codes == ["NoError"]
    await _admin(session, sim, f"{BOX}/impersonation", {"refused": False})
    assert (await call(session, sim, GET_CONTACTS, BOX)).codes == ["NoError"]


async def test_a_mailbox_being_moved_answers_move_in_progress_and_stops_the_batch(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    ids = _ids(sim, BOX)
    status, body = await _admin(session, sim, f"{BOX}/move", {"state": "in_progress"})
    assert status == 200 and body["move"] == "in_progress"
    answer = await call(session, sim, get_item_body(ids), BOX)
    assert answer.status == 200
    assert answer.codes == ["ErrorMailboxMoveInProgress"] + ["ErrorBatchProcessingStopped"] * 2
    classes = [e.get("ResponseClass") for e in answer.xp("//m:GetItemResponseMessage")]
    assert classes == ["Error", "Warning", "Warning"]
    assert (await call(session, sim, GET_CONTACTS, OTHER)).codes == ["NoError"]


async def test_a_moved_mailbox_has_no_mailbox_here_until_it_comes_back(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await _admin(session, sim, f"{BOX}/move", {"state": "moved"})
    answer = await call(session, sim, GET_CONTACTS, BOX)
    assert answer.codes == ["ErrorNonExistentMailbox"]
    assert answer.text("//m:MessageText") == "No mailbox with such guid."
    sync = await call(session, sim, _sync_contacts(), BOX)
    assert sync.codes == ["ErrorNonExistentMailbox"] and not sync.xp("//m:SyncState")
    await _admin(session, sim, f"{BOX}/move", {"state": "none"})
    assert (await call(session, sim, get_item_body(_ids(sim, BOX)), BOX)).codes == ["NoError"] * 3


async def test_admin_access_settings_check_their_input(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    status, body = await _admin(session, sim, f"{BOX}/move", {"state": "gone"})
    assert status == 400 and "in_progress" in body["title"]
    status, body = await _admin(session, sim, f"{BOX}/impersonation", {"refused": "yes"})
    assert status == 400 and "'refused'" in body["title"]
    status, _ = await _admin(session, sim, "nobody@sim.example/move", {"state": "moved"})
    assert status == 404
    async with session.get(f"{sim.admin_url}/mailboxes/{OTHER}/access") as resp:
        assert await resp.json() == {"address": OTHER, "impersonation": "allowed", "move": "none"}


def _sync_contacts() -> str:
    return (
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        '<m:SyncFolderId><t:DistinguishedFolderId Id="contacts"/></m:SyncFolderId>'
        "<m:MaxChangesReturned>10</m:MaxChangesReturned></m:SyncFolderItems>"
    )


@asynccontextmanager
async def _process(*args: str) -> AsyncIterator[dict[str, Any]]:
    """`python -m ews_client.simulator` on a free port; yields its start-up facts."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ews_client.simulator", "--port", "0", "--mailboxes", "3",
        "--items-per-folder", "1", "--json", *args, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        yield json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_command_line_starts_with_refused_moving_and_moved_mailboxes(
    session: aiohttp.ClientSession,
) -> None:
    third = "user00003@sim.example"
    args = ("--refuse-impersonation", BOX, "--moving", OTHER, "--moved", third)
    async with _process(*args) as facts:
        admin = facts["ews_url"].replace("/EWS/Exchange.asmx", "/_sim")
        sim = Endpoint(facts["ews_url"], admin, facts["username"], facts["password"])
        assert (await call(session, sim, GET_CONTACTS, BOX)).fault_code == (
            "ErrorImpersonateUserDenied"
        )
        assert (await call(session, sim, GET_CONTACTS, OTHER)).codes == [
            "ErrorMailboxMoveInProgress"
        ]
        assert (await call(session, sim, GET_CONTACTS, third)).codes == ["ErrorNonExistentMailbox"]
        status, body = await _admin(session, sim, f"{third}/move", {"state": "none"})
        assert status == 200 and body["move"] == "none"
        assert (await call(session, sim, GET_CONTACTS, third)).codes == ["NoError"]
