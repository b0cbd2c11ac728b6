"""The simulator's `translateExchangeIds`: refused to an application token as Graph refuses it,
and (reached without a token, as a delegated caller would) translating ids of any generation
of a moved mailbox; answers checked against the Graph metadata by the fixture."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ews_client.models import Contact, EntityKind, Item, Upsert
from ews_client.simulator import moves
from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.graph import permissions
from ews_client.simulator.graph.handlers import GReq
from ews_client.simulator.graph.ids import graph_id
from ews_client.simulator.graph.routes import run_one
from ews_client.simulator.testing import RunningSimulator, running_simulator
from tests.ews.test_builders import APPOINTMENT, TASK

from .conftest import BOX, GRAPH_SCOPE, make_client
from .test_auth_tokens import assert_graph_refusal, call, token_for

PATH = f"users/{BOX}/translateExchangeIds"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """Two mailboxes with three contacts, events and tasks each (conftest's have none)."""
    async with running_simulator(SimulatorConfig(), tls=True) as running:
        running.sim.add_numbered(2, items_per_folder=3)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


async def _translate(sim: RunningSimulator, body: Any) -> tuple[int, Any]:
    """Through the Graph endpoint's request path (throttle, checks), without a token."""
    assert sim.graph is not None
    req = GReq("POST", PATH, {}, {}, body, sim.graph_url)
    res = await run_one(sim.graph, req)
    return res.status, res.body


def _body(ids: list[str], source: str, target: str) -> dict[str, Any]:
    return {"inputIds": ids, "sourceIdType": source, "targetIdType": target}


def _targets(answer: Any) -> list[str]:
    return [one["targetId"] for one in answer["value"]]


async def test_an_application_token_is_refused_403(sim: RunningSimulator) -> None:
    token = await token_for(sim, GRAPH_SCOPE)
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        ids = list(sim.sim.mailboxes[BOX].items)[:1]
        url = f"{sim.graph_url}/{PATH}"
        status, _, answer = await call(http, url, token, "POST", _body(ids, "ewsId", "restId"))
    assert status == 403
    assert assert_graph_refusal(answer, "ErrorAccessDenied")
    assert permissions.required("POST", PATH, {}, lambda _: None) == permissions.DELEGATED_ONLY


async def test_ids_from_before_a_move_translate_to_the_ids_after_it(sim: RunningSimulator) -> None:
    box = sim.sim.mailboxes[BOX]
    before = list(box.items)
    assert len(before) == 9
    status, entries = await _translate(sim, _body(before, "ewsId", "entryId"))
    assert status == 200
    entry_ids = _targets(entries)
    assert [one["sourceId"] for one in entries["value"]] == before
    moves.move(box, sim.sim.access, moves.Persona.GRAPH)
    after = list(box.items)
    assert not set(after) & set(before)
    rest_after = [graph_id(i) for i in after]
    for source, values in (
        ("ewsId", before),
        ("restId", [graph_id(i) for i in before]),
        ("entryId", entry_ids),
        ("restImmutableEntryId", [graph_id(i) for i in before]),
    ):
        status, answer = await _translate(sim, _body(values, source, "restId"))
        assert status == 200 and _targets(answer) == rest_after, source
    status, answer = await _translate(sim, _body(rest_after, "restId", "ewsId"))
    assert _targets(answer) == after
    status, answer = await _translate(sim, _body(rest_after, "restId", "entryId"))
    assert _targets(answer) == entry_ids  # the entry id survives the move
    # The translated ids are the ones Graph serves the items under now.
    status, listed = await run_one_get(sim, f"users/{BOX}/contacts")
    served = {c["id"] for c in listed["value"]}
    assert status == 200 and len(served) == 3 and served <= set(rest_after)


async def run_one_get(sim: RunningSimulator, path: str) -> tuple[int, Any]:
    assert sim.graph is not None
    res = await run_one(sim.graph, GReq("GET", path, {}, {}, None, sim.graph_url))
    return res.status, res.body


async def test_an_id_of_no_item_gets_error_details_and_the_others_translate(
    sim: RunningSimulator,
) -> None:
    box = sim.sim.mailboxes[BOX]
    good = next(iter(box.items))
    other = next(iter(sim.sim.mailboxes["user00002@sim.example"].items))
    status, answer = await _translate(sim, _body([good, "garbage", other], "ewsId", "restId"))
    assert status == 200
    first, malformed, foreign = answer["value"]
    assert first == {"sourceId": good, "targetId": graph_id(good)}
    assert malformed["errorDetails"]["code"] == "ErrorInvalidIdMalformed"
    assert foreign["errorDetails"]["code"] == "ErrorInvalidIdMalformed"  # another mailbox's
    assert "targetId" not in malformed
    deleted = list(box.items)[1]
    box.remove(box.items[deleted])
    status, answer = await _translate(sim, _body([deleted], "ewsId", "restId"))
    assert answer["value"][0]["errorDetails"]["code"] == "ErrorItemNotFound"


async def test_limits_and_formats_are_refused_with_400(sim: RunningSimulator) -> None:
    good = next(iter(sim.sim.mailboxes[BOX].items))
    status, answer = await _translate(sim, _body([good] * 1000, "ewsId", "restId"))
    assert status == 200 and len(answer["value"]) == 1000
    status, answer = await _translate(sim, _body([good] * 1001, "ewsId", "restId"))
    assert status == 400 and "at most 1000" in answer["error"]["message"]
    status, answer = await _translate(sim, _body([good], "ewsId", "owaId"))
    assert status == 400 and "targetIdType" in answer["error"]["message"]
    status, answer = await _translate(sim, {"inputIds": "x", "sourceIdType": "ewsId"})
    assert status == 400 and "inputIds" in answer["error"]["message"]


async def test_items_keep_their_crm_ids_across_a_move_under_their_new_ids(
    sim: RunningSimulator,
) -> None:
    """What a move can re-link by without translateExchangeIds: the CRM id every linked item
    carries (a contact's and an event's extended property, a task's linked resource)."""
    kinds = (EntityKind.CONTACT, EntityKind.APPOINTMENT, EntityKind.TASK)
    samples: dict[EntityKind, Item] = {
        EntityKind.CONTACT: Contact(given_name="Moved", surname="Along", crm_id="crm-c"),
        EntityKind.APPOINTMENT: dataclasses.replace(APPOINTMENT, crm_id="crm-a"),
        EntityKind.TASK: dataclasses.replace(TASK, crm_id="crm-t"),
    }
    async with make_client(sim) as client:
        made = {k: (await client.create_item(BOX, samples[k])).id for k in kinds}
        moves.move(sim.sim.mailboxes[BOX], sim.sim.access, moves.Persona.GRAPH)
        for kind in kinds:
            listed = {i.crm_id: i.ref.id for i in await client.list_items(BOX, kind) if i.ref}
            assert samples[kind].crm_id in listed, kind
            assert listed[samples[kind].crm_id] != made[kind], kind


async def test_a_delta_token_from_before_a_move_is_dead_and_a_fresh_one_lists_the_new_ids(
    sim: RunningSimulator,
) -> None:
    async with make_client(sim) as client:
        first = await client.sync_changes(BOX, EntityKind.CONTACT, None)
        old = {c.item.ref.id for c in first.changes if isinstance(c, Upsert) and c.item.ref}
        assert len(old) == 3
        moves.move(sim.sim.mailboxes[BOX], sim.sim.access, moves.Persona.GRAPH)
        again = await client.sync_changes(BOX, EntityKind.CONTACT, first.sync_state)
        assert again.restarted  # the token died (410) and the client started afresh
        new = {c.item.ref.id for c in again.changes if isinstance(c, Upsert) and c.item.ref}
        assert len(new) == 3 and not new & old
