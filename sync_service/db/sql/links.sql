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
WITH r AS (
    SELECT * FROM jsonb_to_recordset($3::text::jsonb) AS r(
        crm_id text, exchange_id text, change_key text, crm_hash text, exchange_hash text,
        synced_fields jsonb, pending text, intent_hash text)
), gone AS (
    DELETE FROM sync.item_links AS l USING r
    WHERE l.mailbox_id = $1 AND l.entity = $2 AND l.exchange_id = r.exchange_id
      AND r.exchange_id <> '' AND l.crm_id <> r.crm_id
    RETURNING 1
)
INSERT INTO sync.item_links (mailbox_id, entity, crm_id, exchange_id, change_key, crm_hash,
    exchange_hash, synced_fields, pending, intent_hash)
SELECT $1, $2, crm_id, exchange_id, change_key, crm_hash, exchange_hash, synced_fields, pending,
       intent_hash
FROM r WHERE (SELECT count(*) FROM gone) >= 0
ON CONFLICT (mailbox_id, entity, crm_id) DO UPDATE SET
    exchange_id = EXCLUDED.exchange_id, change_key = EXCLUDED.change_key,
    crm_hash = EXCLUDED.crm_hash, exchange_hash = EXCLUDED.exchange_hash,
    synced_fields = EXCLUDED.synced_fields, pending = EXCLUDED.pending,
    intent_hash = EXCLUDED.intent_hash, updated_at = now()

-- name: item_link_delete
DELETE FROM sync.item_links WHERE mailbox_id = $1 AND entity = $2 AND crm_id = $3

-- name: item_error_insert
INSERT INTO sync.item_errors (mailbox_id, entity, crm_id, exchange_id, direction, reason,
    content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7)

-- name: run_begin
-- Start a pass: the mailbox row and a new runs row, in one statement (no row: the mailbox is
-- gone and no run is recorded).
WITH run AS (
    INSERT INTO sync.runs (mailbox_id, job_id, kind, dry_run, engine, started_at)
    SELECT id, $2, $3, $4, $5, now() FROM sync.mailboxes WHERE id = $1
    RETURNING id
)
SELECT m.*, run.id AS run_id FROM sync.mailboxes AS m, run WHERE m.id = $1

-- name: run_finish
UPDATE sync.runs SET finished_at = now(), outcome = $2, counts = $3, requests = $4,
    throttled = $5, error = $6, plan = $7
WHERE id = $1

-- name: item_errors_refused
-- Content the other side already refused for this mailbox and entity: skipped until it changes.
SELECT DISTINCT content_hash FROM sync.item_errors
WHERE mailbox_id = $1 AND entity = $2 AND content_hash IS NOT NULL
