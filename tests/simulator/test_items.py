"""Items over real HTTP: create / sync / get / update / delete / find, sync states, errors."""

from __future__ import annotations

import aiohttp

from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX
from .helpers import (
    EXT_URI,
    call,
    create_contact_body,
    get_item_body,
    set_field_body,
    sync_body,
)


async def _create(
    session: aiohttp.ClientSession, sim: RunningSimulator, name: str, crm: str
) -> tuple[str, str]:
    answer = await call(session, sim, create_contact_body(name, crm), BOX)
    assert answer.codes == ["NoError"]
    item_id = answer.xp("//t:ItemId")[0]
    return item_id.get("Id", ""), item_id.get("ChangeKey", "")


async def test_sync_create_update_delete_and_no_change(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    first = await call(session, sim, sync_body("contacts"), BOX)
    assert len(first.xp("//t:Create")) == 2 and first.text("//m:IncludesLastItemInRange") == "true"
    state = first.text("//m:SyncState")
    item_id, ck = await _create(session, sim, "Ann", "crm-1")
    upd = await call(
        session,
        sim,
        set_field_body(item_id, ck, "contacts:GivenName", "<t:GivenName>Anna</t:GivenName>"),
        BOX,
    )
    new_ck = upd.xp("//t:ItemId")[0].get("ChangeKey")
    assert upd.codes == ["NoError"] and new_ck != ck  # every write: a new change key
    seeded = first.xp("//t:ItemId")[0].get("Id")
    body = (
        '<m:DeleteItem DeleteType="HardDelete"><m:ItemIds>'
        f'<t:ItemId Id="{seeded}"/></m:ItemIds></m:DeleteItem>'
    )
    assert (await call(session, sim, body, BOX)).codes == ["NoError"]
    second = await call(session, sim, sync_body("contacts", state), BOX)
    assert [e.get("Id") for e in second.xp("//t:Create/t:Contact/t:ItemId")] == [item_id]
    assert [e.get("Id") for e in second.xp("//t:Delete/t:ItemId")] == [seeded]
    third = await call(session, sim, sync_body("contacts", second.text("//m:SyncState")), BOX)
    assert third.codes == ["NoError"] and third.xp("//m:Changes/*") == []


async def test_sync_pages_with_max_changes(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    page = await call(session, sim, sync_body("contacts", max_changes=1), BOX)
    assert len(page.xp("//t:Create")) == 1 and page.text("//m:IncludesLastItemInRange") == "false"
    rest = await call(session, sim, sync_body("contacts", page.text("//m:SyncState"), 1), BOX)
    assert len(rest.xp("//t:Create")) == 1 and rest.text("//m:IncludesLastItemInRange") == "true"


async def test_invalid_sync_states(sim: RunningSimulator, session: aiohttp.ClientSession) -> None:
    garbage = await call(session, sim, sync_body("contacts", "bm90IGEgc3RhdGU="), BOX)
    assert garbage.codes == ["ErrorInvalidSyncStateData"]
    other = await call(session, sim, sync_body("calendar"), BOX)
    foreign = await call(session, sim, sync_body("contacts", other.text("//m:SyncState")), BOX)
    assert foreign.codes == ["ErrorInvalidSyncStateData"]
    other_box = await call(session, sim, sync_body("contacts"), "user00002@sim.example")
    assert (
        await call(session, sim, sync_body("contacts", other_box.text("//m:SyncState")), BOX)
    ).codes == ["ErrorInvalidSyncStateData"]


async def test_snapshot_restore_brings_items_back_and_kills_later_states(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    await session.post(f"{sim.admin_url}/mailboxes/{BOX}/snapshot", json={"name": "s1"})
    item_id, _ = await _create(session, sim, "Bob", "crm-2")
    state = (await call(session, sim, sync_body("contacts"), BOX)).text("//m:SyncState")
    async with session.post(
        f"{sim.admin_url}/mailboxes/{BOX}/restore", json={"name": "s1"}
    ) as resp:
        assert resp.status == 200
    async with session.get(f"{sim.admin_url}/mailboxes/{BOX}/items") as resp:
        ids = [i["id"] for i in (await resp.json())["items"]]
    assert item_id not in ids and len(ids) == 6
    after = await call(session, sim, sync_body("contacts", state), BOX)
    assert after.codes == ["ErrorInvalidSyncStateData"]


async def test_stale_change_key_is_an_irresolvable_conflict(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    item_id, ck = await _create(session, sim, "Cid", "crm-3")
    ok = await call(
        session,
        sim,
        set_field_body(item_id, ck, "contacts:JobTitle", "<t:JobTitle>CEO</t:JobTitle>"),
        BOX,
    )
    assert ok.codes == ["NoError"]
    stale = await call(
        session,
        sim,
        set_field_body(item_id, ck, "contacts:JobTitle", "<t:JobTitle>CTO</t:JobTitle>"),
        BOX,
    )
    assert stale.codes == ["ErrorIrresolvableConflict"]


async def test_get_item_shapes_and_extended_property(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    item_id, ck = await _create(session, sim, "Dee", "crm-4")
    id_only = await call(
        session,
        sim,
        get_item_body([(item_id, ck)], "IdOnly", '<t:FieldURI FieldURI="contacts:GivenName"/>'),
        BOX,
    )
    assert [c.tag.split("}")[1] for c in id_only.xp("//t:Contact/*")] == ["ItemId", "GivenName"]
    default = await call(session, sim, get_item_body([(item_id, ck)]), BOX)
    assert default.xp("//t:ExtendedProperty") == []  # only when asked for by path
    with_ext = await call(session, sim, get_item_body([(item_id, ck)], "IdOnly", EXT_URI), BOX)
    assert with_ext.text("//t:ExtendedProperty/t:Value") == "crm-4"
    missing = await call(session, sim, get_item_body([("AAMkMS45OTkuMQ==", "x")]), BOX)
    assert missing.codes == ["ErrorItemNotFound"]


async def test_find_item_by_crm_id(sim: RunningSimulator, session: aiohttp.ClientSession) -> None:
    item_id, _ = await _create(session, sim, "Eve", "crm-5")
    body = (
        '<m:FindItem Traversal="Shallow"><m:ItemShape>'
        "<t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        f'<m:Restriction><t:IsEqualTo>{EXT_URI}<t:FieldURIOrConstant><t:Constant Value="crm-5"/>'
        "</t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>"
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="contacts"/></m:ParentFolderIds>'
        "</m:FindItem>"
    )
    found = await call(session, sim, body, BOX)
    assert [e.get("Id") for e in found.xp("//t:ItemId")] == [item_id]


async def test_user_configuration_is_hidden(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    name = '<t:DistinguishedFolderId Id="root"/>'
    create = (
        "<m:CreateUserConfiguration><m:UserConfiguration>"
        '<t:UserConfigurationName Name="CrmSync.Marker">'
        f"{name}</t:UserConfigurationName><t:XmlData>PGEvPg==</t:XmlData></m:UserConfiguration>"
        "</m:CreateUserConfiguration>"
    )
    assert (await call(session, sim, create, BOX)).codes == ["NoError"]
    again = await call(session, sim, create, BOX)
    assert again.codes == ["ErrorItemSave"]
    get = (
        f'<m:GetUserConfiguration><m:UserConfigurationName Name="CrmSync.Marker">{name}'
        "</m:UserConfigurationName><m:UserConfigurationProperties>All</m:UserConfigurationProperties>"
        "</m:GetUserConfiguration>"
    )
    got = await call(session, sim, get, BOX)
    assert got.text("//t:XmlData") == "PGEvPg=="
    sync = await call(session, sim, sync_body("root"), BOX)
    assert sync.xp("//m:Changes/*") == []


async def test_mailbox_errors_and_schema_validation(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    unknown = await call(session, sim, sync_body("contacts"), "nobody@sim.example")
    assert unknown.status == 500 and unknown.fault_code == "ErrorNonExistentMailbox"
    object.__setattr__(
        sim.sim,
        "config",
        sim.sim.config.__class__(impersonable=frozenset({BOX}), validate_responses=True),
    )
    denied = await call(session, sim, sync_body("contacts"), "user00002@sim.example")
    assert denied.fault_code == "ErrorImpersonateUserDenied"
    bad = sync_body("contacts").replace("<m:MaxChangesReturned>512</m:MaxChangesReturned>", "")
    invalid = await call(session, sim, bad, BOX)
    assert invalid.status == 500 and invalid.fault_code == "ErrorSchemaValidation"
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    async with session.post(
        sim.ews_url, data=hostile, headers={"Authorization": "Basic eDp5"}
    ) as resp:
        assert resp.status == 401
