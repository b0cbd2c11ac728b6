-- Read models of the operator surface (CLI and admin API), owned by db/operator_views.py.

-- name: op_mailbox_item_counts
SELECT entity, count(*) AS n FROM sync.item_links WHERE mailbox_id = $1 GROUP BY entity

-- name: op_mailbox_item_errors
-- Status as in item_errors_list (item_errors.sql).
SELECT id, entity, kind, crm_id, exchange_id, direction, reason, detail, created_at,
    CASE WHEN retried_at IS NOT NULL THEN 'retried'
         WHEN acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END AS status
FROM sync.item_errors
WHERE mailbox_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2

-- name: op_mailbox_open_jobs
-- A mailbox's unfinished jobs: a real pass and a dry run at most, the real one first.
SELECT id, kind, status, priority, source, dry_run, run_after, requested_at, rerun_kind
FROM sync.jobs WHERE mailbox_id = $1 AND status IN ('queued', 'running')
ORDER BY dry_run, id

-- name: op_runs
-- Runs, newest first, optionally of one mailbox and since a time. The outcome is NULL only
-- while a live engine runs the pass (sync.run_outcome): one left open by an engine that
-- stopped reads as lost before anyone reaps its job. `planned`: a dry run's counts per entity.
SELECT r.id, m.email AS mailbox, r.job_id, r.kind, r.dry_run, r.engine, r.started_at,
    r.finished_at, sync.run_outcome(r.outcome, r.job_id, r.engine) AS outcome, r.counts,
    r.requests, r.throttled, r.error, r.plan_items -> 'entities' AS planned, r.entities
FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id
WHERE ($1::bigint IS NULL OR r.mailbox_id = $1)
  AND ($2::timestamptz IS NULL OR r.started_at >= $2)
ORDER BY r.started_at DESC, r.id DESC LIMIT $3

-- name: op_runs_of_jobs
-- The passes of these jobs that ended after the request ($2, database time) or still run
-- (outcome and planned as in op_runs).
SELECT r.id, m.email AS mailbox, r.job_id, r.kind, r.dry_run, r.engine, r.started_at,
    r.finished_at, sync.run_outcome(r.outcome, r.job_id, r.engine) AS outcome, r.counts,
    r.requests, r.throttled, r.error, r.plan_items -> 'entities' AS planned, r.entities
FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id
WHERE r.job_id = ANY($1::bigint[]) AND (r.finished_at IS NULL OR r.finished_at >= $2)
ORDER BY r.started_at, r.id

-- name: op_run
-- One run with its plan: `plan_items` item by item (dry runs since migration 0008), `plan` the
-- rendered text (outcome as in op_runs).
SELECT r.id, m.email AS mailbox, r.job_id, r.kind, r.dry_run, r.engine, r.started_at,
    r.finished_at, sync.run_outcome(r.outcome, r.job_id, r.engine) AS outcome, r.counts,
    r.requests, r.throttled, r.error, r.plan_items, r.plan, r.entities
FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id
WHERE r.id = $1

-- name: op_jobs_status
SELECT id, mailbox_id, status, outcome FROM sync.jobs WHERE id = ANY($1::bigint[])

-- name: op_runs_summary
-- Passes, requests and throttled answers since $1, by outcome; running only while a live
-- engine runs the pass (sync.run_outcome).
SELECT COALESCE(sync.run_outcome(outcome, job_id, engine), 'running') AS outcome,
    count(*) AS passes,
    COALESCE(sum(requests), 0) AS requests, COALESCE(sum(throttled), 0) AS throttled
FROM sync.runs WHERE started_at >= $1 GROUP BY 1 ORDER BY 1

-- name: op_items_summary
-- Items written since $1 (not dry runs) by entity, direction and operation; counts are
-- {entity: {direction: {operation: n}}}.
SELECT e.key AS entity, d.key AS direction, o.key AS operation, sum((o.value)::bigint) AS n
FROM sync.runs r
CROSS JOIN LATERAL jsonb_each(r.counts) e
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(e.value) = 'object' THEN e.value
                                   ELSE '{}'::jsonb END) d
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(d.value) = 'object' THEN d.value
                                   ELSE '{}'::jsonb END) o
WHERE r.started_at >= $1 AND NOT r.dry_run AND jsonb_typeof(o.value) = 'number'
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3

-- name: op_leader_table
SELECT to_regclass('sync.dispatcher') IS NOT NULL AS present

-- name: op_leader
-- The leader the dispatcher recorded, and whether its heartbeat is recent ($1).
SELECT leader, leader_since, heartbeat_at, COALESCE(heartbeat_at > now() - $1::interval, false)
    AS fresh
FROM sync.dispatcher

-- name: op_now
SELECT now()
