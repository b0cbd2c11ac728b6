-- Item errors and findings (refused writes, ambiguous matches): what a pass records beyond the
-- refusals the applier writes, and what an operator lists, retries and acknowledges. Owned by
-- db/item_errors.py. A row's status: 'retried' once a retry was asked (the row is history: a
-- new refusal is a new row), else 'acknowledged' once acknowledged, else 'open'.

-- name: item_findings_insert
-- Record the ambiguous matches of one pass for mailbox $1 and entity $2 ($3: a JSON array of
-- {direction, reason, detail}, detail holding crm_ids and exchange_ids). A group that shares
-- a CRM id or an Exchange id with a finding already recorded (open or not) is the same one,
-- found again by a pass that was retried: it is not recorded twice. The number recorded.
WITH f AS (
    SELECT * FROM jsonb_to_recordset($3::jsonb) AS f(direction text, reason text, detail jsonb)
), added AS (
    INSERT INTO sync.item_errors (mailbox_id, entity, kind, direction, reason, detail)
    SELECT $1, $2, 'ambiguous_match', f.direction, f.reason, f.detail FROM f
    WHERE NOT EXISTS (
        SELECT 1 FROM sync.item_errors AS e
        WHERE e.mailbox_id = $1 AND e.entity = $2 AND e.kind = 'ambiguous_match'
          AND ((e.detail -> 'crm_ids') ?| ARRAY(SELECT jsonb_array_elements_text(f.detail -> 'crm_ids'))
               OR (e.detail -> 'exchange_ids')
                  ?| ARRAY(SELECT jsonb_array_elements_text(f.detail -> 'exchange_ids'))))
    RETURNING 1
)
SELECT count(*) FROM added

-- name: item_errors_list
-- Item errors across mailboxes, newest first, after id $8 (0: from the newest), at most $9.
-- Filters (NULL: any): $1 mailbox, $2 server, $3 entity, $4 kind, $5 text in the reason (any
-- case), $6 recorded at or after, $7 status.
SELECT e.id, m.email AS mailbox, s.name AS server, e.entity, e.kind, e.crm_id, e.exchange_id,
    e.direction, e.reason, e.detail, e.created_at, e.acknowledged_at, e.retried_at,
    CASE WHEN e.retried_at IS NOT NULL THEN 'retried'
         WHEN e.acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END AS status
FROM sync.item_errors AS e
JOIN sync.mailboxes AS m ON m.id = e.mailbox_id
JOIN sync.servers AS s ON s.id = m.server_id
WHERE ($1::bigint IS NULL OR e.mailbox_id = $1)
  AND ($2::bigint IS NULL OR m.server_id = $2)
  AND ($3::text IS NULL OR e.entity = $3)
  AND ($4::text IS NULL OR e.kind = $4)
  AND ($5::text IS NULL OR strpos(lower(e.reason), lower($5)) > 0)
  AND ($6::timestamptz IS NULL OR e.created_at >= $6)
  AND ($7::text IS NULL OR $7 = CASE WHEN e.retried_at IS NOT NULL THEN 'retried'
                                     WHEN e.acknowledged_at IS NOT NULL THEN 'acknowledged'
                                     ELSE 'open' END)
  AND ($8::bigint = 0 OR e.id < $8)
ORDER BY e.id DESC
LIMIT $9

-- name: item_errors_by_id
SELECT id, kind, retried_at FROM sync.item_errors WHERE id = ANY($1::bigint[])

-- name: item_errors_retry
-- Ask for a retry of the refused items $1 (ids): their refused content (content_hash, which
-- the passes skip) moves to retried_hash, and so does that of every other row refusing the
-- same content of the same mailbox and entity, so that the next pass writes the item again.
-- Ambiguous matches and rows already retried are left as they are. The rows marked, with
-- their mailbox, its address and whether its initial pass is done.
UPDATE sync.item_errors AS e SET retried_at = now(), retried_hash = e.content_hash,
    content_hash = NULL
FROM sync.item_errors AS c
JOIN sync.mailboxes AS m ON m.id = c.mailbox_id
WHERE c.id = ANY($1::bigint[]) AND c.kind = 'refused' AND c.retried_at IS NULL
  AND e.kind = 'refused' AND e.retried_at IS NULL
  AND (e.id = c.id OR (e.mailbox_id = c.mailbox_id AND e.entity = c.entity
                       AND e.content_hash = c.content_hash))
RETURNING e.id, e.mailbox_id, m.email, m.initial_done

-- name: item_errors_acknowledge
-- Acknowledge items $1 (ids): kept and listed, no longer open. Those acknowledged now.
UPDATE sync.item_errors SET acknowledged_at = now()
WHERE id = ANY($1::bigint[]) AND acknowledged_at IS NULL
RETURNING id

-- name: item_errors_open_counts
-- Open item errors (neither acknowledged nor retried) by entity and kind, for the gauge.
SELECT entity, kind, count(*) AS n FROM sync.item_errors
WHERE acknowledged_at IS NULL AND retried_at IS NULL
GROUP BY entity, kind
