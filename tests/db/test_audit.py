"""The audit trail in SQL: rows commit with their links or not at all, the three access paths,
keyset paging on (at, id), the indexes behind each query, and the retention purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from sync_service.db.audit import AuditEntry, AuditFilter, AuditRow, AuditTrail
from sync_service.db.links import LinkStore
from sync_service.db.queries import load_queries
from sync_service.dispatcher import schedule
from sync_service.dispatcher.sweeps import Sweeper
from tests.db.test_links import _row
from tests.db.test_queue import _mailboxes
from tests.dispatcher.conftest import make_settings

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _entry(crm_id: str, exchange_id: str, **changed: Any) -> AuditEntry:
    return AuditEntry(
        crm_id=crm_id,
        exchange_id=exchange_id,
        title=f"Title {crm_id}",
        side="exchange",
        operation="update",
        changed_on="crm",
        reason="changed in CRM",
        changes={k: {"before": None, "after": v} for k, v in changed.items()},
        policy=None,
        winner=None,
        losing=None,
        earlier=False,
    )


async def _insert(
    pool: asyncpg.Pool, mailbox: int, crm_id: str, exchange_id: str, at: datetime
) -> None:
    """An audit row at a chosen time (the service's rows take the statement's time)."""
    await pool.execute(
        "INSERT INTO sync.audit (at, mailbox_id, entity, crm_id, exchange_id, side, operation, "
        "changed_on) VALUES ($1, $2, 'contact', $3, $4, 'crm', 'update', 'exchange')",
        at,
        mailbox,
        crm_id,
        exchange_id,
    )


async def _all(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch("SELECT * FROM sync.audit ORDER BY id")]


async def test_a_link_statement_inserts_its_audit_rows_or_none(pool: asyncpg.Pool) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    run_id = await pool.fetchval(
        "INSERT INTO sync.runs (mailbox_id, kind, started_at) VALUES ($1, 'express', now()) "
        "RETURNING id",
        box,
    )
    written = {"crm_to_exchange": {"update": 2}}
    entries = [_entry("c1", "x1", company="A"), _entry("c2", "x2", company="B")]
    await links.upsert_links(
        box, "contact", [_row("c1", "x1"), _row("c2", "x2")], run_id=run_id, written=written,
        audit=entries,
    )  # fmt: skip
    rows = await _all(pool)
    assert [(r["crm_id"], r["exchange_id"], r["run_id"], r["mailbox_id"]) for r in rows] == [
        ("c1", "x1", run_id, box),
        ("c2", "x2", run_id, box),
    ]
    assert rows[0]["changes"] == {"company": {"before": None, "after": "A"}}
    assert rows[0]["title"] == "Title c1" and rows[0]["reason"] == "changed in CRM"
    # A statement that fails (two rows of one batch claim one Exchange item) leaves no row:
    # neither the links nor their audit rows nor the counts.
    with pytest.raises(asyncpg.UniqueViolationError):
        await links.upsert_links(
            box, "contact", [_row("c3", "x3"), _row("c4", "x3")], run_id=run_id,
            written=written, audit=[_entry("c3", "x3"), _entry("c4", "x3")],
        )  # fmt: skip
    assert len(await _all(pool)) == 2
    counts = await pool.fetchval("SELECT counts FROM sync.runs WHERE id = $1", run_id)
    assert counts == {"contact": {"crm_to_exchange": {"update": 2}}}


async def test_deletes_and_unlinked_writes_are_audited_in_their_statements(
    pool: asyncpg.Pool,
) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    await links.upsert_links(box, "task", [_row("t1", "x1")])
    gone = _entry("t1", "x1") | {"operation": "delete", "changes": {}}
    await links.delete_link(
        box, "task", "t1", written={"crm_to_exchange": {"delete": 1}}, audit=[AuditEntry(**gone)]
    )
    half = _entry("t2", "x2", subject="S") | {"side": "crm", "changed_on": "exchange"}
    await links.count_writes(
        box, "task", None, {"exchange_to_crm": {"update": 1}}, [AuditEntry(**half)]
    )
    rows = await _all(pool)
    assert [(r["entity"], r["crm_id"], r["side"], r["operation"], r["run_id"]) for r in rows] == [
        ("task", "t1", "exchange", "delete", None),
        ("task", "t2", "crm", "update", None),
    ]


async def test_an_earlier_passes_create_is_audited_for_the_run_that_made_it(
    pool: asyncpg.Pool,
) -> None:
    [box] = await _mailboxes(pool, 1)
    links = LinkStore(pool)
    made, later = [
        await pool.fetchval(
            "INSERT INTO sync.runs (mailbox_id, kind, started_at) VALUES ($1, 'initial', now()) "
            "RETURNING id",
            box,
        )
        for _ in range(2)
    ]
    await links.upsert_links(box, "contact", [_row("c1", "", pending="exchange")], run_id=made)
    found = _entry("c1", "x1") | {"operation": "create", "earlier": True}
    # Settled by the later pass: the create is counted, and audited, for the run that made it.
    await links.upsert_links(
        box, "contact", [_row("c1", "x1") | {"earlier": True}], run_id=later,
        audit=[AuditEntry(**found)],
    )  # fmt: skip
    # The same entry over a row that is no longer pending is no create of an earlier pass.
    await links.upsert_links(
        box, "contact", [_row("c1", "x1")], run_id=later, audit=[AuditEntry(**found)]
    )
    rows = await _all(pool)
    assert [(r["crm_id"], r["operation"], r["run_id"]) for r in rows] == [("c1", "create", made)]
    counts = await pool.fetchval("SELECT counts FROM sync.runs WHERE id = $1", made)
    assert counts == {"contact": {"crm_to_exchange": {"create": 1}}}


async def _seed_trail(pool: asyncpg.Pool) -> tuple[int, int]:
    one, two = await _mailboxes(pool, 2)
    for minute in range(5):
        await _insert(pool, one, f"c{minute}", f"x{minute}", T0 + timedelta(minutes=minute))
        await _insert(pool, two, f"d{minute}", f"y{minute}", T0 + timedelta(minutes=minute))
    await _insert(pool, two, "c1", "y9", T0 + timedelta(minutes=9))  # the CRM id in another box
    return one, two


def _ids(rows: list[AuditRow]) -> list[str]:
    return [f"{r.mailbox.split('@')[0]}:{r.crm_id}" for r in rows]


async def test_the_trail_by_mailbox_record_and_time_newest_first(pool: asyncpg.Pool) -> None:
    one, _ = await _seed_trail(pool)
    trail = AuditTrail(pool)
    of_one = await trail.rows(AuditFilter(mailbox_id=one))
    assert _ids(of_one) == [f"user0:c{m}" for m in (4, 3, 2, 1, 0)]
    window = AuditFilter(
        mailbox_id=one, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)
    )
    assert _ids(await trail.rows(window)) == ["user0:c2", "user0:c1"]  # [since, until)
    assert _ids(await trail.rows(AuditFilter(record="c1"))) == ["user1:c1", "user0:c1"]
    assert _ids(await trail.rows(AuditFilter(record="c1", mailbox_id=one))) == ["user0:c1"]
    assert _ids(await trail.rows(AuditFilter(record="y3"))) == ["user1:d3"]  # an Exchange id
    assert await trail.rows(AuditFilter(record="nothing")) == []
    everything = await trail.rows(AuditFilter(since=T0 + timedelta(minutes=4)))
    # Both mailboxes' rows of minute 4: the later insert (mailbox two's) first.
    assert _ids(everything) == ["user1:c1", "user1:d4", "user0:c4"]
    assert of_one[0].mailbox == "user0@example.com" and of_one[0].changes == {}


async def test_pages_follow_at_then_id_and_hold_still_while_rows_are_added(
    pool: asyncpg.Pool,
) -> None:
    [one] = await _mailboxes(pool, 1)
    # Seven rows of one instant (one statement's): only the id orders them.
    for i in range(7):
        await _insert(pool, one, f"same{i}", f"s{i}", T0)
    for minute in (1, 2):
        await _insert(pool, one, f"later{minute}", f"l{minute}", T0 + timedelta(minutes=minute))
    trail = AuditTrail(pool)
    seen: list[AuditRow] = []
    after = None
    while True:
        page = await trail.rows(AuditFilter(mailbox_id=one, after=after, limit=3))
        seen.extend(page)
        if len(page) < 3:
            break
        after = page[-1].position
        # Rows written meanwhile are newer than any page: they shift nothing already read.
        await _insert(pool, one, "newer", "n", T0 + timedelta(minutes=30))
    expected = sorted(
        await trail.rows(AuditFilter(mailbox_id=one, until=T0 + timedelta(minutes=3), limit=50)),
        key=lambda r: (r.at, r.id),
        reverse=True,
    )
    assert [r.id for r in seen] == [r.id for r in expected]
    assert len(seen) == 9 and len({r.id for r in seen}) == 9


@pytest.fixture
async def busy_trail(pool: asyncpg.Pool) -> asyncpg.Pool:
    """20,000 rows over 50 mailboxes and 10 days, analyzed: the planner picks by real figures."""
    boxes = await _mailboxes(pool, 50)
    await pool.execute(
        "INSERT INTO sync.audit (at, mailbox_id, entity, crm_id, exchange_id, side, operation, "
        "changed_on) SELECT $2::timestamptz + i * interval '43 seconds', "
        "($1::bigint[])[1 + i % 50], 'contact', 'c' || i, 'AAMkAGI2' || md5(i::text), 'crm', "
        "'update', 'exchange' FROM generate_series(1, 20000) AS i",
        boxes,
        T0,
    )
    await pool.execute("ANALYZE sync.audit")
    return pool


LATER = T0 + timedelta(days=5)


@pytest.mark.parametrize(
    ("name", "args", "indexes"),
    [
        ("audit_of_mailbox", (3, None, None, None, None, 101), ["audit_mailbox_idx"]),
        ("audit_of_mailbox", (3, None, None, LATER, 7, 101), ["audit_mailbox_idx"]),
        (
            "audit_of_record",
            ("c77", None, None, None, None, None, 101),
            ["audit_crm_idx", "audit_exchange_idx"],
        ),
        ("audit_all", (None, None, None, None, 101), ["audit_pkey"]),
        ("audit_all", (T0, LATER, LATER, 7, 101), ["audit_pkey"]),
        ("dispatcher_purge_audit", (T0 + timedelta(hours=1),), ["audit_pkey"]),
    ],
)
async def test_each_query_is_planned_on_its_index(
    busy_trail: asyncpg.Pool, name: str, args: tuple[object, ...], indexes: list[str]
) -> None:
    async with busy_trail.acquire() as conn, conn.transaction():
        explained = await conn.fetch("EXPLAIN " + load_queries()[name], *args)
    plan = "\n".join(r[0] for r in explained)
    assert all(index in plan for index in indexes), plan
    assert "Seq Scan on audit" not in plan, plan
    if name in ("audit_of_mailbox", "audit_all"):
        # A page is read in index order from its start: no sort of all the rows before it.
        assert "Index Scan Backward" in plan and "Sort" not in plan, plan


async def test_retention_purges_the_rows_older_than_the_cutoff(pool: asyncpg.Pool) -> None:
    [box] = await _mailboxes(pool, 1)
    now = datetime(2026, 6, 15, 3, tzinfo=UTC)
    cutoff = schedule.retention_cutoff(now, 14)
    for name, at in (("old", cutoff - timedelta(microseconds=1)), ("kept", cutoff), ("new", now)):
        await _insert(pool, box, name, name, at)
    purged = await Sweeper(pool, make_settings(SYNC_RETENTION_DAYS="14")).retention(now)
    assert purged["audit"] == 1
    assert [r["crm_id"] for r in await _all(pool)] == ["kept", "new"]
