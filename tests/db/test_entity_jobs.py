"""Jobs and runs that name the entities they cover: requests merge their entity sets as they
coalesce, a rerun covers what was asked while the pass ran, and an 'ok' run dates the passes
of exactly its entities (sync.entity_passes)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from ews_client import EntityKind
from sync_service.db.links import LinkStore, RunEnd
from sync_service.db.queue import JobQueue, JobRequest, PassKind, Priority, entity_scope
from sync_service.db.store import NewServer, Store

CONTACT, APPOINTMENT, TASK = EntityKind.CONTACT, EntityKind.APPOINTMENT, EntityKind.TASK


async def _mailbox(pool: asyncpg.Pool, *, initial_done: bool = True) -> int:
    store = Store(pool)
    url = "https://ex1.example/EWS/Exchange.asmx"
    server = await store.add_server(
        NewServer("ex1", "ews", url, "basic", username="svc", secret_env="EX1_PASSWORD")
    )
    async with pool.acquire() as conn:
        box, _ = await store.upsert_mailbox(
            conn, "u1", "user1@example.com", server.id, None, ("two-way",) * 3
        )
    await pool.execute("UPDATE sync.mailboxes SET initial_done = $2 WHERE id = $1", box.id,
                       initial_done)  # fmt: skip
    return box.id


@pytest.fixture
def queue(pool: asyncpg.Pool) -> JobQueue:
    return JobQueue(pool, lease=timedelta(seconds=30))


def test_an_entity_set_has_one_spelling_for_every_entity() -> None:
    assert entity_scope(None) is None
    assert entity_scope([]) is None
    assert entity_scope(["task", "contact", "appointment"]) is None
    assert entity_scope(["contact", CONTACT]) == frozenset({CONTACT})
    with pytest.raises(ValueError):
        entity_scope(["contacts"])


async def test_a_queued_job_covers_the_union_of_the_requests(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    mb = await _mailbox(pool)
    first, created = await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({CONTACT}))
    again, merged = await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({APPOINTMENT}))
    assert created and not merged and again == first
    [job] = await queue.claim("engine-a", 10)
    assert job.entities == frozenset({CONTACT, APPOINTMENT})


async def test_a_request_for_every_entity_absorbs_a_scoped_one(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    mb = await _mailbox(pool)
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({TASK}))
    await queue.enqueue_for([JobRequest(mb, PassKind.EXPRESS, Priority.PUSH, "push")])
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({CONTACT}))
    [job] = await queue.claim("engine-a", 10)
    assert job.entities is None


async def test_a_rerun_covers_the_running_entities_and_those_asked_for_meanwhile(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    mb = await _mailbox(pool)
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({CONTACT}))
    [running] = await queue.claim("engine-a", 10)
    assert running.entities == frozenset({CONTACT})
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({APPOINTMENT}))
    # the running job keeps what it runs; the rerun waits for its end
    row = await pool.fetchrow(
        "SELECT entities, rerun_entities FROM sync.jobs WHERE id = $1", running.id
    )
    assert (row["entities"], row["rerun_entities"]) == (["contact"], ["appointment", "contact"])
    assert await queue.finish(running.id, "engine-a", failed=False, outcome="ok") == "queued"
    [rerun] = await queue.claim("engine-a", 10)
    assert rerun.id == running.id and rerun.entities == frozenset({CONTACT, APPOINTMENT})
    # a second request during the rerun adds the third entity: every entity (NULL)
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({TASK}))
    assert await queue.finish(rerun.id, "engine-a", failed=False, outcome="ok") == "queued"
    [third] = await queue.claim("engine-a", 10)
    assert third.entities is None
    assert await queue.finish(third.id, "engine-a", failed=False, outcome="ok") == "done"


async def test_a_job_handed_back_runs_again_with_its_rerun_folded_in(
    pool: asyncpg.Pool, queue: JobQueue
) -> None:
    mb = await _mailbox(pool)
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({CONTACT}))
    [running] = await queue.claim("engine-a", 10)
    await queue.enqueue(mb, PassKind.EXPRESS, entities=frozenset({TASK}))
    assert await queue.retry_later(running.id, "engine-a", timedelta(0), "transient")
    [again] = await queue.claim("engine-a", 10)
    assert again.entities == frozenset({CONTACT, TASK})
    assert await queue.finish(again.id, "engine-a", failed=False, outcome="ok") == "done"


async def _run(pool: asyncpg.Pool, mb: int, job: int, scope: list[str] | None) -> int:
    links = LinkStore(pool)
    begun = await links.begin_run(mb, job, "express", False, "engine-a", scope)
    assert begun is not None
    await links.finish_run(begun.run_id, RunEnd("ok", 1, 0, None, None))
    return begun.run_id


async def _passes(pool: asyncpg.Pool, mb: int) -> dict[str, object]:
    rows = await pool.fetch(
        "SELECT entity, last_pass_at FROM sync.entity_passes WHERE mailbox_id = $1", mb
    )
    return {r["entity"]: r["last_pass_at"] for r in rows}


async def test_an_ok_run_dates_the_passes_of_its_entities_only(pool: asyncpg.Pool) -> None:
    mb = await _mailbox(pool)
    run = await _run(pool, mb, 1, ["contact"])
    assert await pool.fetchval("SELECT entities FROM sync.runs WHERE id = $1", run) == ["contact"]
    assert set(await _passes(pool, mb)) == {"contact"}
    await _run(pool, mb, 2, None)
    assert set(await _passes(pool, mb)) == {"contact", "appointment", "task"}
    # a failed run dates nothing
    links = LinkStore(pool)
    begun = await links.begin_run(mb, 3, "express", False, "engine-a", ["task"])
    assert begun is not None
    before = await _passes(pool, mb)
    await links.finish_run(begun.run_id, RunEnd("transient", 1, 0, "boom", None))
    assert await _passes(pool, mb) == before


async def test_a_first_pass_covers_every_entity_whatever_its_job_names(
    pool: asyncpg.Pool,
) -> None:
    mb = await _mailbox(pool, initial_done=False)
    run = await _run(pool, mb, 1, ["contact"])
    row = await pool.fetchrow("SELECT kind, entities FROM sync.runs WHERE id = $1", run)
    assert (row["kind"], row["entities"]) == ("initial", None)
