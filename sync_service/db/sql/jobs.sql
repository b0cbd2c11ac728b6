-- name: job_enqueue
-- Queue a pass for a mailbox, coalescing into its unfinished job of the same sort (dry run or
-- real) if there is one: a queued job takes the stronger kind, the higher priority and the
-- earlier start; a running job records the request as a rerun so that it is queued again when
-- the pass ends. A dry run never coalesces with a real pass: merged, one of the two requests
-- would be lost (the real pass not run, or a dry run that writes).
-- Entity sets merge the same way: a queued job covers the union of what was asked; a running
-- job's rerun covers the union of the running job's entities and of what was asked while it
-- ran (NULL, every entity, absorbs): a change the pass may have read too early is read again.
-- $1 mailbox, $2 kind, $3 priority, $4 run_after, $5 source, $6 dry_run, $7 forced,
-- $8 oldest_change_at, $9 entities (NULL: every entity)
INSERT INTO sync.jobs AS j
    (mailbox_id, kind, priority, run_after, source, dry_run, forced, oldest_change_at, entities)
VALUES ($1, $2, $3, COALESCE($4, now()), $5, $6, $7, $8, sync.entity_set($9::text[]))
ON CONFLICT (mailbox_id, dry_run) WHERE status IN ('queued', 'running') DO UPDATE SET
    entities = CASE WHEN j.status = 'queued' THEN sync.entity_union(j.entities, EXCLUDED.entities)
                    ELSE j.entities END,
    rerun_entities = CASE WHEN j.status <> 'running' THEN j.rerun_entities
                          WHEN j.rerun_kind IS NULL
                          THEN sync.entity_union(j.entities, EXCLUDED.entities)
                          ELSE sync.entity_union(j.rerun_entities, EXCLUDED.entities) END,
    kind = CASE WHEN j.status = 'queued' AND sync.job_kind_rank(EXCLUDED.kind) > sync.job_kind_rank(j.kind)
                THEN EXCLUDED.kind ELSE j.kind END,
    rerun_kind = CASE WHEN j.status <> 'running' THEN j.rerun_kind
                      WHEN sync.job_kind_rank(EXCLUDED.kind) > sync.job_kind_rank(j.rerun_kind)
                      THEN EXCLUDED.kind ELSE j.rerun_kind END,
    priority = GREATEST(j.priority, EXCLUDED.priority),
    run_after = CASE WHEN j.status = 'queued' THEN LEAST(j.run_after, EXCLUDED.run_after)
                     ELSE j.run_after END,
    forced = j.forced OR EXCLUDED.forced,
    oldest_change_at = LEAST(j.oldest_change_at, EXCLUDED.oldest_change_at)
RETURNING id, (xmax = 0) AS inserted

-- name: job_claim
-- Claim up to $2 due jobs for engine $1 with a lease of $3; concurrent claimers skip each
-- other's rows. Jobs of mailboxes that are not active wait, except a recover job for a mailbox
-- that needs recovery. One pass per mailbox at a time: a job waits while another job of its
-- mailbox runs, and of a mailbox's two claimable jobs (a dry run and a real pass) only the
-- first in claim order is taken. Two claims racing to one mailbox (a job that fell due while
-- another claim took its sibling) are refused by jobs_one_running_per_mailbox; the claim is
-- then tried again (JobQueue.claim). Each check looks at few rows: running jobs, open dry runs
-- (jobs_open_dry_run_idx), and only for a dry run the real pass beside it.
WITH next AS (
    SELECT j.id FROM sync.jobs j
    JOIN sync.mailboxes m ON m.id = j.mailbox_id
    WHERE j.status = 'queued' AND j.run_after <= now()
      AND (m.state = 'active' OR (m.state = 'needs_recovery' AND j.kind = 'recover'))
      AND NOT EXISTS (
          SELECT 1 FROM sync.jobs r WHERE r.mailbox_id = j.mailbox_id AND r.status = 'running')
      -- a real pass waits for the dry run of its mailbox that comes first, and the other way
      AND NOT EXISTS (
          SELECT 1 FROM sync.jobs d
          WHERE d.mailbox_id = j.mailbox_id AND d.dry_run AND d.status = 'queued'
            AND d.run_after <= now() AND (m.state = 'active' OR d.kind = 'recover')
            AND (d.priority > j.priority
                 OR (d.priority = j.priority AND (d.run_after, d.id) < (j.run_after, j.id))))
      AND (NOT j.dry_run OR NOT EXISTS (
          SELECT 1 FROM sync.jobs p
          WHERE p.mailbox_id = j.mailbox_id AND NOT p.dry_run AND p.status = 'queued'
            AND p.run_after <= now() AND (m.state = 'active' OR p.kind = 'recover')
            AND (p.priority > j.priority
                 OR (p.priority = j.priority AND (p.run_after, p.id) < (j.run_after, j.id)))))
    ORDER BY j.priority DESC, j.run_after, j.id
    LIMIT $2
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE sync.jobs j SET status = 'running', lease_owner = $1,
    lease_expires_at = now() + $3::interval, attempts = j.attempts + 1
FROM next WHERE j.id = next.id
RETURNING j.id, j.mailbox_id, j.kind, j.dry_run, j.forced, j.attempts, j.priority, j.source,
          j.oldest_change_at, j.requested_at, j.entities

-- name: job_finish
-- End a pass: a rerun requested meanwhile queues the job again (same row, still a dry run or
-- still a real pass: requests coalesce only with their own sort) covering the entities those
-- requests asked for, else it is done.
-- A run of the job this engine left open (its pass crashed before recording its end) is closed
-- in the same statement: failed, with the job's outcome as its error.
WITH job AS (
    UPDATE sync.jobs SET
        status = CASE WHEN rerun_kind IS NULL THEN $3 ELSE 'queued' END,
        kind = COALESCE(rerun_kind, kind),
        entities = CASE WHEN rerun_kind IS NULL THEN entities ELSE rerun_entities END,
        rerun_kind = NULL, rerun_entities = NULL,
        outcome = $4,
        run_after = now(),
        lease_owner = NULL, lease_expires_at = NULL,
        finished_at = CASE WHEN rerun_kind IS NULL THEN now() END,
        attempts = CASE WHEN rerun_kind IS NULL THEN attempts ELSE 0 END
    WHERE id = $1 AND lease_owner = $2 AND status = 'running'
    RETURNING id, status
), closed AS (
    UPDATE sync.runs AS r SET finished_at = now(),
        outcome = CASE WHEN $3 = 'failed' THEN 'failed' ELSE 'ok' END,
        error = CASE WHEN $3 = 'failed' THEN $4 END
    FROM job WHERE r.job_id = job.id AND r.engine = $2 AND r.finished_at IS NULL
)
SELECT status FROM job

-- name: job_retry_later
-- Give the job back: it waits $3 and is claimed again. A run of the job this engine left open
-- (a pass cancelled by a stop or cut off by its time budget) ends in the same statement, with
-- outcome $5 and error $6, so that no run outlives the engine's hold on its job. A rerun asked
-- for meanwhile is folded in: the stronger kind, the union of the entities.
WITH job AS (
    UPDATE sync.jobs SET status = 'queued', run_after = now() + $3::interval, outcome = $4,
        kind = CASE WHEN sync.job_kind_rank(rerun_kind) > sync.job_kind_rank(kind)
                    THEN rerun_kind ELSE kind END,
        entities = CASE WHEN rerun_kind IS NULL THEN entities
                        ELSE sync.entity_union(entities, rerun_entities) END,
        rerun_kind = NULL, rerun_entities = NULL, lease_owner = NULL, lease_expires_at = NULL
    WHERE id = $1 AND lease_owner = $2 AND status = 'running'
    RETURNING id
), closed AS (
    UPDATE sync.runs AS r SET finished_at = now(), outcome = $5, error = $6::text
    FROM job WHERE r.job_id = job.id AND r.engine = $2 AND r.finished_at IS NULL
)
SELECT count(*) FROM job

-- name: job_reap
-- Give the jobs of dead engines (lease expired) back to the queue, and end the runs they left
-- open as lost in the same statement: a process killed at any moment leaves no run "running"
-- once its leases have expired and any engine has reaped them.
WITH reaped AS (
    UPDATE sync.jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
        run_after = now()
    WHERE status = 'running' AND lease_expires_at < now()
    RETURNING id, mailbox_id
), lost AS (
    UPDATE sync.runs AS r SET finished_at = now(), outcome = 'lost',
        error = format('engine %s stopped renewing the lease of its job', r.engine)
    FROM reaped WHERE r.job_id = reaped.id AND r.finished_at IS NULL
)
SELECT id, mailbox_id FROM reaped

-- name: job_queue_depth
-- Running: held under a live lease. Stalled: its engine stopped renewing the lease, and the
-- job waits for a reaper to queue it again. A job of a mailbox Exchange moved away (a rerun
-- asked for while its last pass ran) waits for the operator's `mailboxes move`, not for an
-- engine: it is not counted as queued (the moved mailboxes have their own gauge).
SELECT count(*) FILTER (WHERE j.status = 'queued' AND m.id IS NULL) AS queued,
       count(*) FILTER (WHERE j.status = 'running' AND j.lease_expires_at >= now()) AS running,
       count(*) FILTER (WHERE j.status = 'running' AND j.lease_expires_at < now()) AS stalled,
       COALESCE(EXTRACT(EPOCH FROM now() - min(j.requested_at)
                                    FILTER (WHERE j.status = 'queued' AND m.id IS NULL)),
                0)::float8 AS oldest_queued_seconds
FROM sync.jobs j
LEFT JOIN sync.mailboxes m ON m.id = j.mailbox_id AND m.state = 'moved'

-- name: job_renew_many
-- Renew the leases of every pass an engine runs; the ids not returned were lost (reaped).
UPDATE sync.jobs SET lease_expires_at = now() + $3::interval
WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND status = 'running'
RETURNING id
