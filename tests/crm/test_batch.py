"""Batch creates (one statement per entity) store exactly what one-by-one creates store."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import pytest

from ews_client.models import EntityKind
from sync_service.crm.port import CrmRejected
from sync_service.crm.postgres import PostgresCrm
from sync_service.planning.records import CrmAppointment, CrmContact, CrmRecord, CrmTask
from tests.crm.conftest import Users
from tests.crm.test_records import full_contact, series, task

KINDS = {EntityKind.CONTACT: CrmContact, EntityKind.APPOINTMENT: CrmAppointment,
         EntityKind.TASK: CrmTask}  # fmt: skip
IGNORED = {"id": "", "updated_at": None}


def _variants(owner: str) -> list[CrmRecord]:
    out: list[CrmRecord] = []
    for record in (full_contact(owner), series(owner), task(owner)):
        out.append(replace(record, id=str(uuid.uuid4())))
        out.append(replace(record, id=str(uuid.uuid4()).upper()))
        out.append(replace(record, id=""))  # the CRM draws the id
    out.append(CrmContact(str(uuid.uuid4()), owner))
    out.append(CrmAppointment(str(uuid.uuid4()), owner, subject="x"))
    out.append(CrmTask(str(uuid.uuid4()), owner))
    odd = ("a,b", 'q"u', "{x}", "NULL", "ünï")  # array-literal syntax must not leak through
    out.append(replace(full_contact(owner), id=str(uuid.uuid4()), categories=odd))
    return out


@pytest.mark.parametrize("entity", list(EntityKind))
async def test_batch_stores_what_single_creates_store(
    crm: PostgresCrm, users: Users, pool: asyncpg.Pool, entity: EntityKind
) -> None:
    records = [r for r in _variants(users.alice) if isinstance(r, KINDS[entity])]
    singles = [
        await crm.create_record(replace(r, id=str(uuid.uuid4()) if r.id else ""), users.bob)
        for r in records
    ]
    await crm.create_records(records, users.bob)
    single_ids = {s.id for s in singles}
    batch = [r for r in await crm.list_records(users.bob, entity) if r.id not in single_ids]
    assert sorted(repr(replace(r, **IGNORED)) for r in batch) == sorted(
        repr(replace(s, **IGNORED)) for s in singles
    )
    for record in records:
        if record.id:  # given ids are kept (lower-cased, as PostgreSQL prints uuids)
            got = (await crm.get_records(entity, [record.id]))[record.id.lower()]
            expected = replace(record, owner_id=users.bob, version=1)
            assert replace(got, **IGNORED) == replace(expected, **IGNORED)
    log = await pool.fetch(
        "SELECT op, origin_user_id::text AS origin FROM crm.change_log WHERE entity = $1",
        entity.value,
    )
    assert len(log) == 2 * len(records)  # one change per record, marked with its origin
    assert {(row["op"], row["origin"]) for row in log} == {("insert", users.bob)}


async def test_a_refused_batch_writes_nothing_and_names_the_field(
    crm: PostgresCrm, users: Users
) -> None:
    good = replace(task(users.alice), id=str(uuid.uuid4()))
    bad = replace(task(users.alice), id=str(uuid.uuid4()), percent_complete=101)
    with pytest.raises(CrmRejected) as info:
        await crm.create_records([good, bad], users.alice)
    assert info.value.field == "percent_complete"
    assert await crm.get_records(EntityKind.TASK, [good.id]) == {}
