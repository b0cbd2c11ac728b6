"""The console's data set: 10,000 mailboxes on two servers with a day of history, written
with set-based SQL in a few seconds (the browser tests and benchmarks/bench_console.py).

Per mailbox: a state (mostly active; some disabled, quarantined, needing recovery, each with
its reason), a group, folder links for the three entities, linked items, and passes spread over
the last 24 hours with their counts, requests and throttled answers. Across them: open and
acknowledged item errors, audit rows, queued jobs and two live engines.

The two servers point at a closed port of this machine, and the queued jobs are due in a day:
an engine running beside the data set (the browser tests') claims none of them and reaches
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

GROUPS = ("emea", "amer", "apac", "sales", "support")


@dataclass(frozen=True, slots=True)
class DataSet:
    mailboxes: int = 10_000
    runs_per_mailbox: int = 4  # over the last 24 hours
    links_per_mailbox: int = 5
    item_errors: int = 600
    audit_rows: int = 20_000
    queued_jobs: int = 300


SERVERS = """
INSERT INTO sync.servers (name, backend, url, auth_kind, username, secret_env, tenant, client_id,
    authority)
VALUES ('exchange', 'ews', 'https://127.0.0.1:9/EWS/Exchange.asmx', 'basic',
        'svc-sync@example.com', 'EXCHANGE_PASSWORD', NULL, NULL, NULL),
       ('online', 'graph', 'https://127.0.0.1:9/v1.0', 'oauth', NULL,
        'GRAPH_CLIENT_SECRET', 'contoso.onmicrosoft.com', '00000000-0000-0000-0000-00000000c0de',
        'https://127.0.0.1:9/contoso.onmicrosoft.com')
ON CONFLICT (name) DO NOTHING
"""

MAILBOXES = """
INSERT INTO sync.mailboxes (crm_user_id, email, server_id, server_group, state, state_reason,
    initial_done, last_express_at, last_complete_at, failure_count, last_error)
SELECT 'crm-' || n, format('user%s@example.com', lpad(n::text, 5, '0')),
    (SELECT id FROM sync.servers
     WHERE name = CASE WHEN n % 2 = 0 THEN 'online' ELSE 'exchange' END),
    ($2::text[])[1 + n % array_length($2::text[], 1)],
    s.state,
    CASE s.state WHEN 'disabled' THEN 'disabled by an operator'
                 WHEN 'quarantined' THEN 'quarantined after 5 failures: ErrorAccessDenied'
                 WHEN 'needs_recovery' THEN 'the marker is older than the database: restored?'
    END,
    true, now() - (n % 900) * interval '1 second', now() - interval '20 hours',
    CASE s.state WHEN 'quarantined' THEN 5 ELSE 0 END,
    CASE s.state WHEN 'quarantined' THEN 'ErrorAccessDenied: access is denied' END
FROM generate_series(1, $1) AS n
CROSS JOIN LATERAL (SELECT CASE WHEN n % 50 = 7 THEN 'disabled' WHEN n % 50 = 13 THEN 'quarantined'
                                WHEN n % 100 = 29 THEN 'needs_recovery' ELSE 'active' END
                    AS state) s
"""

FOLDERS = """
INSERT INTO sync.folder_links (mailbox_id, entity, folder_id, sync_state)
SELECT m.id, e, NULL, 'H4sIAAAAAAAEAO29B2AcSZYlJi9tynt' FROM sync.mailboxes m
CROSS JOIN unnest(ARRAY['contact', 'appointment', 'task']) e
"""

LINKS = """
INSERT INTO sync.item_links (mailbox_id, entity, crm_id, exchange_id, change_key, crm_hash,
    exchange_hash, synced_fields)
SELECT m.id, (ARRAY['contact', 'appointment', 'task'])[1 + g % 3], m.id || '-' || g,
    'AAMkAD' || md5(m.id || '-' || g), 'CQAAAB', md5(g::text), md5(g::text), '{}'
FROM sync.mailboxes m CROSS JOIN generate_series(1, $1) g
"""

RUNS = """
INSERT INTO sync.runs (mailbox_id, kind, dry_run, engine, started_at, finished_at, outcome,
    counts, requests, throttled, error)
SELECT m.id, CASE WHEN g % 4 = 0 THEN 'complete' ELSE 'express' END, false, 'engine-a',
    t.at, t.at + interval '2 seconds',
    CASE WHEN (m.id + g) % 97 = 0 THEN 'failed' WHEN (m.id + g) % 53 = 0 THEN 'transient'
         ELSE 'ok' END,
    CASE WHEN (m.id + g) % 3 = 0 THEN jsonb_build_object('contact', jsonb_build_object(
            'crm_to_exchange', jsonb_build_object('create', 1 + g % 3, 'update', g % 2),
            'exchange_to_crm', jsonb_build_object('update', 1)))
         ELSE '{}'::jsonb END,
    3 + g % 5, CASE WHEN (m.id + g) % 41 = 0 THEN 1 ELSE 0 END,
    CASE WHEN (m.id + g) % 97 = 0 THEN 'ErrorServerBusy: the server is busy' END
FROM sync.mailboxes m CROSS JOIN generate_series(1, $1) g
CROSS JOIN LATERAL (SELECT now() - ((m.id * 7 + g * 5413) % 86000) * interval '1 second' AS at) t
"""

ITEM_ERRORS = """
INSERT INTO sync.item_errors (mailbox_id, entity, crm_id, exchange_id, direction, reason, kind,
    created_at, acknowledged_at)
SELECT m.id, 'contact', m.id || '-err', 'AAMkAD' || md5(m.id::text), 'crm_to_exchange',
    'ErrorInvalidPropertyValue: the e-mail address is not valid', 'refused',
    now() - m.id * interval '1 minute', CASE WHEN m.id % 3 = 0 THEN now() END
FROM sync.mailboxes m WHERE m.id % (SELECT greatest(1, count(*) / $1) FROM sync.mailboxes) = 1
LIMIT $1
"""

AUDIT = """
INSERT INTO sync.audit (at, mailbox_id, entity, crm_id, exchange_id, title, side, operation,
    changed_on, reason, changes)
SELECT now() - g * interval '4 seconds', (SELECT min(id) FROM sync.mailboxes) + g % $2,
    'contact', 'c-' || g, 'AAMkAD' || md5(g::text), 'Contact ' || g, 'exchange', 'update',
    'crm', 'changed in the CRM',
    '{"job_title": {"before": "Engineer", "after": "Head of Engineering"}}'
FROM generate_series(1, $1) g
"""

JOBS = """
INSERT INTO sync.jobs (mailbox_id, kind, priority, source, status, run_after, requested_at)
SELECT m.id, 'express', 0, 'schedule', 'queued', now() + interval '1 day',
    now() - m.id * interval '1 second'
FROM sync.mailboxes m WHERE m.state = 'active' ORDER BY m.id DESC LIMIT $1
"""

# A dry run of the first mailbox with its plan as the passes record it (planning/render.py).
DRY_RUN = """
INSERT INTO sync.runs (mailbox_id, kind, dry_run, engine, started_at, finished_at, outcome,
    requests, plan, plan_items)
SELECT min(id), 'complete', true, 'engine-a', now() - interval '5 minutes',
    now() - interval '299 seconds', 'ok', 4, 'contact: 1 create in Exchange, 1 update in the CRM',
    $1::jsonb
FROM sync.mailboxes
"""
PLAN = {
    "entities": [
        {
            "entity": "contact",
            "kind": "complete",
            "items": 12,
            "planned": {"create_exchange": 1, "update": 1},
            "summary": "contact: 1 create in Exchange, 1 update in the CRM",
        }
    ],
    "items": [
        {
            "entity": "contact",
            "action": "create_exchange",
            "direction": "crm_to_exchange",
            "crm_id": "c-1",
            "exchange_id": None,
            "title": "Ada Lovelace",
            "changes": [
                {"field": "surname", "side": "exchange", "before": None, "after": "Lovelace"}
            ],
            "reason": None,
            "conflict": None,
        },
        {
            "entity": "contact",
            "action": "update",
            "direction": "exchange_to_crm",
            "crm_id": "c-2",
            "exchange_id": "AAMkAD2",
            "title": "Grace Hopper",
            "changes": [
                {"field": "job_title", "side": "crm", "before": "Officer", "after": "Rear Admiral"}
            ],
            "reason": None,
            "conflict": None,
        },
    ],
    "omitted": 0,
    "ambiguities": [],
}

ENGINES = """
INSERT INTO sync.engines (name, roles) VALUES ('engine-a', 'api,engine,dispatcher'),
    ('engine-b', 'engine') ON CONFLICT (name) DO UPDATE SET heartbeat_at = now()
"""


async def seed(conn: asyncpg.Connection, data: DataSet = DataSet()) -> None:
    """Write the data set into a migrated, empty database; ANALYZE after, as autovacuum would."""
    async with conn.transaction():
        await conn.execute(SERVERS)
        await conn.execute(MAILBOXES, data.mailboxes, list(GROUPS))
        await conn.execute(FOLDERS)
        await conn.execute(LINKS, data.links_per_mailbox)
        await conn.execute(RUNS, data.runs_per_mailbox)
        await conn.execute(ITEM_ERRORS, data.item_errors)
        await conn.execute(AUDIT, data.audit_rows, data.mailboxes)
        await conn.execute(JOBS, data.queued_jobs)
        await conn.execute(DRY_RUN, json.dumps(PLAN))
        await conn.execute(ENGINES)
    await conn.execute("ANALYZE")
