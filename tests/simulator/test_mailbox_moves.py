"""A mailbox moving between the simulator's EWS and Graph personas (new ids, entry ids kept),
and EWS ConvertId between EwsId, EntryId and HexEntryId; every answer checked against the
EWS schema by the fixture."""

from __future__ import annotations

from typing import Any

import aiohttp

from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX
from .helpers import Answer, call, get_item_body, sync_body

OTHER = "user00002@sim.example"


async def _relocate(
    session: aiohttp.ClientSession, sim: RunningSimulator, address: str, to: str
) -> tuple[int, dict[str, Any]]:
    async with session.post(f"{sim.admin_url}/mailboxes/{address}/relocate", json={"to": to}) as r:
        return r.status, await r.json(content_type=None)


def _convert_body(target: str, ids: list[tuple[str, str]], mailbox: str = BOX) -> str:
    alts = "".join(f'<t:AlternateId Format="{f}" Id="{i}" Mailbox="{mailbox}"/>' for f, i in ids)
    return (
        f'<m:ConvertId DestinationFormat="{target}"><m:SourceIds>{alts}</m:SourceIds></m:ConvertId>'
    )


def _converted(answer: Answer) -> list[str]:
    return [e.get("Id", "") for e in answer.xp("//m:AlternateId")]


def _item_ids(sim: RunningSimulator, address: str = BOX) -> list[str]:
    return list(sim.sim.mailboxes[address].items)


async def test_a_move_to_graph_re_keys_every_item_and_ews_answers_the_moved_error(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    box = sim.sim.mailboxes[BOX]
    before = {i.id: (i.change_key, i.kind) for i in box.items.values()}
    others = _item_ids(sim, OTHER)
    status, body = await _relocate(session, sim, BOX, "graph")
    assert status == 200 and body == {"address": BOX, "persona": "graph", "rekeyed": len(before)}
    after = {i.id: (i.change_key, i.kind) for i in box.items.values()}
    assert len(after) == len(before) and not set(after) & set(before)
    # Same items, same change keys: a move is no edit of any of them.
    assert sorted(after.values()) == sorted(before.values())
    for folder in box.folders.values():
        assert all(i in box.items for i in folder.items)
    assert _item_ids(sim, OTHER) == others  # only the moved mailbox re-keyed
    moved = await call(session, sim, sync_body("contacts"), BOX)
    assert moved.codes == ["ErrorNonExistentMailbox"]
    assert moved.text("//m:MessageText") == "No mailbox with such guid."
    # Moving to where it already is changes nothing.
    assert (await _relocate(session, sim, BOX, "graph"))[1]["rekeyed"] == 0
    assert set(box.items) == set(after)


async def test_a_move_back_re_keys_again_and_old_sync_states_are_invalid(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    first = await call(session, sim, sync_body("contacts"), BOX)
    state = first.text("//m:SyncState")
    original = _item_ids(sim)
    await _relocate(session, sim, BOX, "graph")
    on_graph = _item_ids(sim)
    status, _ = await _relocate(session, sim, BOX, "ews")
    assert status == 200
    back = _item_ids(sim)
    assert len(set(original) | set(on_graph) | set(back)) == 3 * len(original)
    stale = await call(session, sim, sync_body("contacts", state), BOX)
    assert stale.codes == ["ErrorInvalidSyncStateData"]
    fresh = await call(session, sim, sync_body("contacts"), BOX)
    listed = {e.get("Id") for e in fresh.xp("//t:Create/t:Contact/t:ItemId")}
    assert listed and listed <= set(back)
    # An id of before the moves names nothing on EWS any more.
    old = await call(session, sim, get_item_body([(original[0], "x")], "IdOnly"), BOX)
    assert old.codes == ["ErrorItemNotFound"]


async def test_convert_id_keeps_the_entry_id_across_moves(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    original = _item_ids(sim)
    as_entry = await call(
        session, sim, _convert_body("EntryId", [("EwsId", i) for i in original]), BOX
    )
    assert as_entry.codes == ["NoError"] * len(original)
    entries = _converted(as_entry)
    assert len(set(entries)) == len(original)
    assert {e.get("Format") for e in as_entry.xp("//m:AlternateId")} == {"EntryId"}
    as_hex = await call(
        session, sim, _convert_body("HexEntryId", [("EntryId", e) for e in entries]), BOX
    )
    hexes = _converted(as_hex)
    assert all(h == h.upper() and bytes.fromhex(h) for h in hexes)
    await _relocate(session, sim, BOX, "graph")
    await _relocate(session, sim, BOX, "ews")
    current = _item_ids(sim)
    # Entry ids and hex entry ids taken before the moves name the items under their new ids,
    # and so do the EWS ids of before.
    for source, values in (("EntryId", entries), ("HexEntryId", hexes), ("EwsId", original)):
        answer = await call(
            session, sim, _convert_body("EwsId", [(source, v) for v in values]), BOX
        )
        assert answer.codes == ["NoError"] * len(values), source
        assert _converted(answer) == current, source
    again = await call(session, sim, _convert_body("EntryId", [("EwsId", i) for i in current]), BOX)
    assert _converted(again) == entries


async def test_convert_id_answers_one_error_per_id_it_cannot_convert(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    good = _item_ids(sim)[0]
    other_entry = _converted(
        await call(
            session,
            sim,
            _convert_body("EntryId", [("EwsId", _item_ids(sim, OTHER)[0])], OTHER),
            BOX,
        )
    )[0]
    answer = await call(
        session,
        sim,
        _convert_body(
            "EwsId",
            [("EwsId", good), ("EwsId", "not-an-id"), ("EntryId", other_entry), ("OwaId", good)],
        ),
        BOX,
    )
    # Another mailbox's entry id under this mailbox's address names nothing here.
    assert answer.codes == ["NoError", "ErrorInvalidIdMalformed", "ErrorInvalidIdMalformed",
                            "ErrorInvalidIdMalformed"]  # fmt: skip
    unknown = await call(
        session, sim, _convert_body("EwsId", [("EwsId", good)], "nobody@sim.example"), BOX
    )
    assert unknown.codes == ["ErrorNonExistentMailbox"]


async def test_convert_id_on_a_moved_mailbox_answers_the_moved_error_per_id(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    ids = _item_ids(sim)[:2]
    await _relocate(session, sim, BOX, "graph")
    # Asked through a mailbox still on EWS: the moved one's ids are not this server's.
    answer = await call(session, sim, _convert_body("EntryId", [("EwsId", i) for i in ids]), OTHER)
    assert answer.codes == ["ErrorNonExistentMailbox"] * 2
    # Asked through the moved mailbox itself: the whole request stops, as for any operation.
    itself = await call(session, sim, _convert_body("EntryId", [("EwsId", i) for i in ids]), BOX)
    assert itself.codes == ["ErrorNonExistentMailbox", "ErrorBatchProcessingStopped"]


async def test_relocate_refuses_an_unknown_persona(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    status, body = await _relocate(session, sim, BOX, "cloud")
    assert status == 400 and "'to' must be one of ews, graph" in str(body)
