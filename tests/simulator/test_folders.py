"""Linked folders through both clients against the simulator: a folder chosen by path, id or
well-known name; made when asked; renamed and moved by the owner and still the same folder
(its id); its items read and written there and never in the default folder; deleted, and
every read of it answers FolderNotFoundError (EWS and Graph)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ews_client import (
    Appointment,
    Contact,
    EntityKind,
    EwsClient,
    ExchangeBackend,
    FolderChoice,
    FolderNotFoundError,
    GraphClient,
    Task,
    Upsert,
)
from ews_client.io.auth import BasicAuth, OAuthClientCredentials
from ews_client.simulator.config import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

BOX = "user00001@sim.example"
CONTACT = EntityKind.CONTACT


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(SimulatorConfig(), tls=True) as running:
        running.sim.add_numbered(1, items_per_folder=2)
        yield running
        assert running.sim.invalid_responses == []
        assert running.sim.invalid_requests == []


@pytest.fixture(params=["ews", "graph"])
async def backend(request: pytest.FixtureRequest, sim: RunningSimulator) -> AsyncIterator[Any]:
    client: EwsClient | GraphClient
    if request.param == "ews":
        client = EwsClient(sim.ews_url, BasicAuth(sim.username, sim.password), ca_file=sim.ca_file)
    else:
        creds = OAuthClientCredentials(
            authority=sim.authority,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            scope="https://graph.microsoft.com/.default",
            ca_file=sim.ca_file,
        )
        client = GraphClient(sim.graph_url, creds, ca_file=sim.ca_file)
    async with client:
        yield client


async def _admin(sim: RunningSimulator, method: str, path: str, body: object = None) -> Any:
    async with aiohttp.ClientSession() as http:
        url = f"{sim.admin_url}/mailboxes/{BOX}{path}"
        async with http.request(method, url, json=body, ssl=False) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()


async def _folder(sim: RunningSimulator, parent: str, name: str) -> str:
    made = await _admin(sim, "POST", "/folders", {"parent": parent, "display_name": name})
    return str(made["id"])


def _ews_id(value: str) -> str:
    return value.replace("-", "+").replace("_", "/")


async def _names(backend: ExchangeBackend, folder: str | None) -> set[str]:
    items = await backend.list_items(BOX, CONTACT, folder=folder)
    return {i.given_name or "" for i in items if isinstance(i, Contact)}


async def test_a_path_names_a_subfolder_that_syncs_alone(
    sim: RunningSimulator, backend: ExchangeBackend
) -> None:
    fid = await _folder(sim, "contacts", "CRM")
    await _admin(sim, "POST", "/items", {"folder": fid, "fields": {"GivenName": "Ada"}})
    linked = await backend.resolve_folder(BOX, CONTACT, FolderChoice("path", "contacts/crm"))
    assert _ews_id(linked.id) == fid and linked.path == "Contacts/CRM" and not linked.created
    assert await _names(backend, linked.id) == {"Ada"}
    ref = await backend.create_item(BOX, Contact(given_name="Bob", crm_id="c-1"), folder=linked.id)
    found = await backend.find_by_crm_id(BOX, CONTACT, "c-1", folder=linked.id)
    assert found is not None and found.id == ref.id
    assert await backend.find_by_crm_id(BOX, CONTACT, "c-1") is None  # not in the default one
    assert await _names(backend, linked.id) == {"Ada", "Bob"}
    assert "Bob" not in await _names(backend, None)
    by_id = await backend.resolve_folder(BOX, CONTACT, FolderChoice("id", linked.id))
    assert by_id.id == linked.id


async def test_renamed_and_moved_the_id_still_reads_it(
    sim: RunningSimulator, backend: ExchangeBackend
) -> None:
    fid = await _folder(sim, "contacts", "CRM")
    linked = await backend.resolve_folder(BOX, CONTACT, FolderChoice("path", "Contacts/CRM"))
    first = await backend.sync_changes(BOX, CONTACT, None, folder=linked.id)
    other = await _folder(sim, "contacts", "Clients")
    await _admin(sim, "PATCH", f"/folders/{fid}", {"display_name": "CRM (old)", "parent": other})
    await _admin(sim, "POST", "/items", {"folder": fid, "fields": {"GivenName": "Cy"}})
    later = await backend.sync_changes(BOX, CONTACT, first.sync_state, folder=linked.id)
    assert [c.item.given_name for c in later.changes if isinstance(c, Upsert)] == ["Cy"]
    with pytest.raises(FolderNotFoundError, match="CRM"):
        await backend.resolve_folder(BOX, CONTACT, FolderChoice("path", "Contacts/CRM"))


async def test_create_makes_the_missing_folders(
    sim: RunningSimulator, backend: ExchangeBackend
) -> None:
    choice = FolderChoice("path", "Contacts/CRM/Leads")
    with pytest.raises(FolderNotFoundError, match="--create"):
        await backend.resolve_folder(BOX, CONTACT, choice)
    made = await backend.resolve_folder(BOX, CONTACT, choice, create=True)
    assert made.created and made.path == "Contacts/CRM/Leads"
    again = await backend.resolve_folder(BOX, CONTACT, choice, create=True)
    assert again.id == made.id and not again.created
    with pytest.raises(FolderNotFoundError, match="must start at the contact folder"):
        await backend.resolve_folder(BOX, CONTACT, FolderChoice("path", "Calendar/CRM"))


async def test_a_deleted_folder_is_told_apart(
    sim: RunningSimulator, backend: ExchangeBackend
) -> None:
    fid = await _folder(sim, "contacts", "CRM")
    await _admin(sim, "POST", "/items", {"folder": fid, "fields": {"GivenName": "Ada"}})
    linked = await backend.resolve_folder(BOX, CONTACT, FolderChoice("path", "Contacts/CRM"))
    first = await backend.sync_changes(BOX, CONTACT, None, folder=linked.id)
    deleted = await _admin(sim, "DELETE", f"/folders/{fid}")
    assert deleted["items"] == 1
    with pytest.raises(FolderNotFoundError):
        await backend.sync_changes(BOX, CONTACT, first.sync_state, folder=linked.id)
    with pytest.raises(FolderNotFoundError):
        await backend.sync_changes(BOX, CONTACT, None, folder=linked.id)
    with pytest.raises(FolderNotFoundError):
        await backend.resolve_folder(BOX, CONTACT, FolderChoice("id", linked.id))
    assert len(await _names(backend, None)) == 2  # the default folder is untouched


async def test_a_task_list_by_path(sim: RunningSimulator, backend: ExchangeBackend) -> None:
    choice = FolderChoice("path", "Tasks/CRM")
    made = await backend.resolve_folder(BOX, EntityKind.TASK, choice, create=True)
    assert made.created
    await backend.create_item(BOX, Task(subject="call", crm_id="t-1"), folder=made.id)
    listed = await backend.list_items(BOX, EntityKind.TASK, folder=made.id)
    assert [i.crm_id for i in listed] == ["t-1"]
    assert "t-1" not in {i.crm_id for i in await backend.list_items(BOX, EntityKind.TASK)}
    with pytest.raises(FolderNotFoundError, match=r"holds IPF.Contact|not a task folder"):
        await backend.resolve_folder(BOX, EntityKind.TASK, FolderChoice("well_known", "contacts"))


async def test_a_calendar_by_path(sim: RunningSimulator, backend: ExchangeBackend) -> None:
    start = datetime(2026, 12, 7, 9, tzinfo=UTC)
    cal = EntityKind.APPOINTMENT
    made = await backend.resolve_folder(BOX, cal, FolderChoice("path", "Calendar/CRM"), create=True)
    assert made.created and made.path == "Calendar/CRM"
    meeting = Appointment(
        subject="review", start=start, end=start + timedelta(hours=1), crm_id="a-1"
    )
    ref = await backend.create_item(BOX, meeting, folder=made.id)
    first = await backend.sync_changes(BOX, cal, None, folder=made.id)
    assert [c.item.crm_id for c in first.changes if isinstance(c, Upsert)] == ["a-1"]
    assert "a-1" not in {i.crm_id for i in await backend.list_items(BOX, cal)}
    moved = replace(meeting, subject="review (moved)")
    await backend.update_item(BOX, ref, moved, frozenset({"subject"}), folder=made.id)
    later = await backend.sync_changes(BOX, cal, first.sync_state, folder=made.id)
    assert [c.item.subject for c in later.changes if isinstance(c, Upsert)] == ["review (moved)"]
    found = await backend.find_by_crm_id(BOX, cal, "a-1", folder=made.id)
    assert found is not None and found.id == ref.id
    await backend.delete_item(BOX, found, cal, folder=made.id)
    assert await backend.list_items(BOX, cal, folder=made.id) == []
    again = await backend.resolve_folder(BOX, cal, FolderChoice("path", "calendar/crm"))
    assert again.id == made.id and not again.created
