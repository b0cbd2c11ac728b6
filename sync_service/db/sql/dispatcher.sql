-- name: dispatcher_claim_leadership
-- The replica holding the advisory lock records itself as the leader.
UPDATE sync.dispatcher SET leader = $1, leader_since = now(), heartbeat_at = now()

-- name: dispatcher_heartbeat
-- Also proves the leader's dedicated connection still works.
UPDATE sync.dispatcher SET heartbeat_at = now() WHERE leader = $1

-- name: dispatcher_status
SELECT leader, leader_since, heartbeat_at, crm_cursor, last_retention_at FROM sync.dispatcher

-- name: dispatcher_cursor
SELECT crm_cursor FROM sync.dispatcher

-- name: dispatcher_set_cursor
-- Advance only from the value read in the same transaction: a deposed leader that read an
-- older cursor changes nothing.
UPDATE sync.dispatcher SET crm_cursor = $2 WHERE crm_cursor IS NOT DISTINCT FROM $1

-- name: dispatcher_mailboxes_of_users
-- Active mailboxes of CRM users (changes for other states wait for their recover/complete pass).
SELECT id, crm_user_id FROM sync.mailboxes
WHERE crm_user_id = ANY($1::text[]) AND state = 'active'

-- name: dispatcher_schedule_mailboxes
-- Mailboxes a schedule or request may touch: active ones of one server (NULL: every server),
-- optionally limited to groups.
SELECT id, server_group, last_express_at, last_complete_at, initial_done
FROM sync.mailboxes
WHERE ($1::bigint IS NULL OR server_id = $1) AND state = 'active'
  AND ($2::text[] IS NULL OR server_group = ANY($2))
ORDER BY id

-- name: dispatcher_push_mailboxes
-- Every active mailbox of the enabled EWS servers, with the modes that decide its folders.
SELECT m.id, m.email, m.server_id, m.contacts_mode, m.calendar_mode, m.tasks_mode
FROM sync.mailboxes m JOIN sync.servers s ON s.id = m.server_id
WHERE m.state = 'active' AND s.enabled AND s.backend = 'ews'
ORDER BY m.server_id, m.id

-- name: dispatcher_enabled_servers
SELECT * FROM sync.servers WHERE enabled ORDER BY id

-- name: dispatcher_complete_through
SELECT complete_through FROM sync.server_schedules WHERE server_id = $1

-- name: dispatcher_set_complete_through
INSERT INTO sync.server_schedules (server_id, complete_through) VALUES ($1, $2)
ON CONFLICT (server_id) DO UPDATE SET complete_through = EXCLUDED.complete_through

-- name: dispatcher_needs_recovery
SELECT id FROM sync.mailboxes WHERE state = 'needs_recovery' ORDER BY id

-- name: dispatcher_mark_push
UPDATE sync.mailboxes SET last_push_at = $2 WHERE id = ANY($1::bigint[])

-- name: dispatcher_last_retention
SELECT last_retention_at FROM sync.dispatcher

-- name: dispatcher_purge_runs
DELETE FROM sync.runs WHERE started_at < $1

-- name: dispatcher_purge_item_errors
DELETE FROM sync.item_errors WHERE created_at < $1

-- name: dispatcher_purge_jobs
DELETE FROM sync.jobs WHERE status IN ('done', 'failed') AND finished_at < $1

-- name: dispatcher_purge_audit
DELETE FROM sync.audit WHERE at < $1

-- name: dispatcher_log_read_from
-- The oldest CRM log position a reader still reads from: a mailbox's watermark, or the feed's
-- cursor (NULL when there is neither).
SELECT least((SELECT min(last_seq) FROM sync.crm_watermarks), (SELECT crm_cursor FROM sync.dispatcher))

-- name: dispatcher_set_retention
UPDATE sync.dispatcher SET last_retention_at = $1

-- name: dispatcher_graph_mailboxes
-- Every active mailbox of the enabled Graph servers (change notifications per mailbox).
SELECT m.id, m.email, m.server_id
FROM sync.mailboxes m JOIN sync.servers s ON s.id = m.server_id
WHERE m.state = 'active' AND s.enabled AND s.backend = 'graph'
ORDER BY m.server_id, m.id
