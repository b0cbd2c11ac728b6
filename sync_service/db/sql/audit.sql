-- The audit trail's reads, newest first. A page starts strictly below the (at, id) of the last
-- row of the previous page (NULL: from the newest); since / until bound the time (NULL: open).
-- One query per access path, so that each is planned on the index that serves it.

-- name: audit_of_mailbox
-- A mailbox's rows: a backward range scan of audit_mailbox_idx.
SELECT a.id, a.at, m.email AS mailbox, a.run_id, a.entity, a.crm_id, a.exchange_id, a.title,
       a.side, a.operation, a.changed_on, a.reason, a.changes, a.policy, a.winner, a.losing
FROM sync.audit AS a JOIN sync.mailboxes AS m ON m.id = a.mailbox_id
WHERE a.mailbox_id = $1
  AND a.at >= COALESCE($2::timestamptz, '-infinity') AND a.at < COALESCE($3::timestamptz, 'infinity')
  AND (a.at, a.id) < (COALESCE($4::timestamptz, 'infinity'), COALESCE($5::bigint, 0))
ORDER BY a.at DESC, a.id DESC
LIMIT $6

-- name: audit_of_record
-- One record's rows, by its CRM id or its Exchange item id ($1), of one mailbox when $2 is
-- given: a record has few rows, found through audit_crm_idx and audit_exchange_idx.
SELECT a.id, a.at, m.email AS mailbox, a.run_id, a.entity, a.crm_id, a.exchange_id, a.title,
       a.side, a.operation, a.changed_on, a.reason, a.changes, a.policy, a.winner, a.losing
FROM sync.audit AS a JOIN sync.mailboxes AS m ON m.id = a.mailbox_id
WHERE (a.crm_id = $1 OR a.exchange_id = $1)
  AND ($2::bigint IS NULL OR a.mailbox_id = $2)
  AND a.at >= COALESCE($3::timestamptz, '-infinity') AND a.at < COALESCE($4::timestamptz, 'infinity')
  AND (a.at, a.id) < (COALESCE($5::timestamptz, 'infinity'), COALESCE($6::bigint, 0))
ORDER BY a.at DESC, a.id DESC
LIMIT $7

-- name: audit_all
-- Every mailbox's rows: a backward range scan of the primary key, (at, id).
SELECT a.id, a.at, m.email AS mailbox, a.run_id, a.entity, a.crm_id, a.exchange_id, a.title,
       a.side, a.operation, a.changed_on, a.reason, a.changes, a.policy, a.winner, a.losing
FROM sync.audit AS a JOIN sync.mailboxes AS m ON m.id = a.mailbox_id
WHERE a.at >= COALESCE($1::timestamptz, '-infinity') AND a.at < COALESCE($2::timestamptz, 'infinity')
  AND (a.at, a.id) < (COALESCE($3::timestamptz, 'infinity'), COALESCE($4::bigint, 0))
ORDER BY a.at DESC, a.id DESC
LIMIT $5
