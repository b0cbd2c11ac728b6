-- name: pass_states
-- What a pass starts from, per entity: the folder's sync state, the CRM watermark, and whether
-- link rows of an interrupted write are waiting for the planner. No array parameter, so that
-- the server plans it once per connection.
SELECT e.entity, f.sync_state, w.last_seq,
       EXISTS (SELECT 1 FROM sync.item_links l
               WHERE l.mailbox_id = $1 AND l.entity = e.entity
                 AND (l.pending <> '' OR l.intent_hash <> '')) AS unfinished
FROM (VALUES ('contact'), ('appointment'), ('task')) AS e(entity)
LEFT JOIN sync.folder_links f ON f.mailbox_id = $1 AND f.entity = e.entity
LEFT JOIN sync.crm_watermarks w ON w.mailbox_id = $1 AND w.entity = e.entity

-- name: item_links_list
SELECT crm_id, exchange_id, change_key, crm_hash, exchange_hash, synced_fields, pending,
       intent_hash
FROM sync.item_links WHERE mailbox_id = $1 AND entity = $2

-- name: item_links_upsert
-- Upsert link rows ($3: a JSON array of link objects, no CRM id twice) in one statement. A
-- link is keyed by CRM id; a row holding the same Exchange item id is replaced. The insert
-- reads the deletion's count so that the deletion runs first (an unread data-modifying WITH
-- runs after the main statement, too late for the unique index on the Exchange id).
-- Counted in the same statement: the writes these rows record ($5: [direction, operation, n]
-- each) for run $4, and each create an earlier pass made but did not link (a settled row
-- marked `earlier` over a pending one) for the run that committed its intent (intent_run).
-- Audited in it too: $6, a JSON array of the audit rows of these writes (sync.audit), so a
-- write and its audit row commit together; an entry marked `earlier` is the audit row of an
-- earlier pass's create, for the run that committed its intent, as that create is counted.
WITH r AS (
    SELECT * FROM jsonb_to_recordset($3::text::jsonb) AS r(
        crm_id text, exchange_id text, change_key text, crm_hash text, exchange_hash text,
        synced_fields jsonb, pending text, intent_hash text, earlier boolean)
), gone AS (
    DELETE FROM sync.item_links AS l USING r
    WHERE l.mailbox_id = $1 AND l.entity = $2 AND l.exchange_id = r.exchange_id
      AND r.exchange_id <> '' AND l.crm_id <> r.crm_id
    RETURNING 1
), writes AS (
    SELECT $4::bigint AS run_id, w AS write FROM jsonb_array_elements($5::jsonb) AS w
    UNION ALL
    SELECT l.intent_run, jsonb_build_array(sync.created_direction(l.pending), 'create', 1)
    FROM r JOIN sync.item_links AS l
        ON l.mailbox_id = $1 AND l.entity = $2 AND l.crm_id = r.crm_id
    WHERE r.earlier AND r.pending = '' AND l.pending <> ''
), counted AS (
    UPDATE sync.runs AS run SET counts = sync.run_counts_add(run.counts, $2, w.writes)
    FROM (SELECT run_id, jsonb_agg(write) AS writes FROM writes
          WHERE run_id IS NOT NULL GROUP BY run_id) AS w
    WHERE run.id = w.run_id
), audited AS (
    INSERT INTO sync.audit (mailbox_id, run_id, entity, crm_id, exchange_id, title, side,
        operation, changed_on, reason, changes, policy, winner, losing)
    SELECT $1, CASE WHEN a.earlier THEN p.intent_run ELSE $4::bigint END, $2, a.crm_id,
           a.exchange_id, a.title, a.side, a.operation, a.changed_on, a.reason, a.changes,
           a.policy, a.winner, a.losing
    FROM jsonb_to_recordset($6::text::jsonb) AS a(
        crm_id text, exchange_id text, title text, side text, operation text, changed_on text,
        reason text, changes jsonb, policy text, winner text, losing jsonb, earlier boolean)
    -- An earlier pass's create is audited for its run as it is counted: over a pending row
    -- (looked up for those entries only, one index probe each).
    LEFT JOIN LATERAL (
        SELECT true AS found, l.intent_run FROM sync.item_links AS l
        WHERE a.earlier AND l.mailbox_id = $1 AND l.entity = $2 AND l.crm_id = a.crm_id
          AND l.pending <> ''
    ) AS p ON true
    WHERE NOT a.earlier OR p.found
)
INSERT INTO sync.item_links AS l (mailbox_id, entity, crm_id, exchange_id, change_key,
    crm_hash, exchange_hash, synced_fields, pending, intent_hash, intent_run)
SELECT $1, $2, crm_id, exchange_id, change_key, crm_hash, exchange_hash, synced_fields, pending,
       intent_hash, CASE WHEN pending <> '' THEN $4::bigint END
FROM r WHERE (SELECT count(*) FROM gone) >= 0
ON CONFLICT (mailbox_id, entity, crm_id) DO UPDATE SET
    exchange_id = EXCLUDED.exchange_id, change_key = EXCLUDED.change_key,
    crm_hash = EXCLUDED.crm_hash, exchange_hash = EXCLUDED.exchange_hash,
    synced_fields = EXCLUDED.synced_fields, pending = EXCLUDED.pending,
    intent_hash = EXCLUDED.intent_hash, updated_at = now(),
    -- An intent committed again keeps the run that first committed it: that run may have made
    -- the create.
    intent_run = CASE WHEN EXCLUDED.pending = '' THEN NULL
                      WHEN l.pending <> '' THEN COALESCE(l.intent_run, EXCLUDED.intent_run)
                      ELSE EXCLUDED.intent_run END

-- name: item_link_delete
-- Remove a link, counting as item_links_upsert does in the same statement: the writes that
-- removed it ($5) for run $4 and, when $6, the create an earlier pass made of a pending row;
-- and auditing them ($7, as in item_links_upsert).
WITH writes AS (
    SELECT $4::bigint AS run_id, w AS write FROM jsonb_array_elements($5::jsonb) AS w
    UNION ALL
    SELECT intent_run, jsonb_build_array(sync.created_direction(pending), 'create', 1)
    FROM sync.item_links
    WHERE mailbox_id = $1 AND entity = $2 AND crm_id = $3 AND $6::boolean AND pending <> ''
), counted AS (
    UPDATE sync.runs AS run SET counts = sync.run_counts_add(run.counts, $2, w.writes)
    FROM (SELECT run_id, jsonb_agg(write) AS writes FROM writes
          WHERE run_id IS NOT NULL GROUP BY run_id) AS w
    WHERE run.id = w.run_id
), audited AS (
    INSERT INTO sync.audit (mailbox_id, run_id, entity, crm_id, exchange_id, title, side,
        operation, changed_on, reason, changes, policy, winner, losing)
    SELECT $1, CASE WHEN a.earlier THEN p.intent_run ELSE $4::bigint END, $2, a.crm_id,
           a.exchange_id, a.title, a.side, a.operation, a.changed_on, a.reason, a.changes,
           a.policy, a.winner, a.losing
    FROM jsonb_to_recordset($7::text::jsonb) AS a(
        crm_id text, exchange_id text, title text, side text, operation text, changed_on text,
        reason text, changes jsonb, policy text, winner text, losing jsonb, earlier boolean)
    -- An earlier pass's create is audited for its run as it is counted: over a pending row
    -- (looked up for those entries only, one index probe each).
    LEFT JOIN LATERAL (
        SELECT true AS found, l.intent_run FROM sync.item_links AS l
        WHERE a.earlier AND l.mailbox_id = $1 AND l.entity = $2 AND l.crm_id = a.crm_id
          AND l.pending <> ''
    ) AS p ON true
    WHERE NOT a.earlier OR p.found
)
DELETE FROM sync.item_links WHERE mailbox_id = $1 AND entity = $2 AND crm_id = $3

-- name: run_count_writes
-- Writes of mailbox $1 and entity $2 that no link records: counted ($4: [direction, operation,
-- n] each) for run $3 (none when NULL) and audited ($5, as in item_links_upsert).
WITH audited AS (
    INSERT INTO sync.audit (mailbox_id, run_id, entity, crm_id, exchange_id, title, side,
        operation, changed_on, reason, changes, policy, winner, losing)
    SELECT $1, CASE WHEN a.earlier THEN p.intent_run ELSE $3::bigint END, $2, a.crm_id,
           a.exchange_id, a.title, a.side, a.operation, a.changed_on, a.reason, a.changes,
           a.policy, a.winner, a.losing
    FROM jsonb_to_recordset($5::text::jsonb) AS a(
        crm_id text, exchange_id text, title text, side text, operation text, changed_on text,
        reason text, changes jsonb, policy text, winner text, losing jsonb, earlier boolean)
    -- An earlier pass's create is audited for its run as it is counted: over a pending row
    -- (looked up for those entries only, one index probe each).
    LEFT JOIN LATERAL (
        SELECT true AS found, l.intent_run FROM sync.item_links AS l
        WHERE a.earlier AND l.mailbox_id = $1 AND l.entity = $2 AND l.crm_id = a.crm_id
          AND l.pending <> ''
    ) AS p ON true
    WHERE NOT a.earlier OR p.found
)
UPDATE sync.runs SET counts = sync.run_counts_add(counts, $2, $4::jsonb) WHERE id = $3

-- name: item_error_insert
INSERT INTO sync.item_errors (mailbox_id, entity, crm_id, exchange_id, direction, reason,
    content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7)

-- name: run_begin
-- Start a pass: the mailbox row and a new runs row, in one statement (no row: the mailbox is
-- gone and no run is recorded). A mailbox's first pass runs as initial whatever was asked
-- (MailboxPass.run): it is recorded as what runs. So are its entities ($6, NULL: every one),
-- which a first pass widens to every one.
WITH run AS (
    INSERT INTO sync.runs (mailbox_id, job_id, kind, dry_run, engine, started_at, entities)
    SELECT id, $2, CASE WHEN $3 = 'express' AND NOT initial_done THEN 'initial' ELSE $3 END,
           $4, $5, now(), CASE WHEN initial_done THEN sync.entity_set($6::text[]) END
    FROM sync.mailboxes WHERE id = $1
    RETURNING id, kind
)
SELECT m.*, run.id AS run_id, run.kind AS run_kind FROM sync.mailboxes AS m, run WHERE m.id = $1

-- name: run_finish
-- End a pass. Its counts were added as its writes committed. A run someone else ended already
-- (lost: its lease expired while the pass went on) keeps that outcome; the rest is recorded.
UPDATE sync.runs SET finished_at = COALESCE(finished_at, now()), outcome = COALESCE(outcome, $2),
    error = CASE WHEN outcome IS NULL THEN $5 ELSE error END,
    requests = $3, throttled = $4, plan = $6
WHERE id = $1

-- name: run_requests
-- The requests of a pass that is being cut short, before its job is handed back.
UPDATE sync.runs SET requests = $2, throttled = $3 WHERE id = $1

-- name: item_errors_refused
-- Content the other side already refused for this mailbox and entity: skipped until it changes.
SELECT DISTINCT content_hash FROM sync.item_errors
WHERE mailbox_id = $1 AND entity = $2 AND content_hash IS NOT NULL
