-- Read models of the web console, owned by console/queries.py. Each is bounded: a page of rows,
-- or an aggregate over an indexed time range.

-- name: console_mailbox_page
-- A page of mailboxes in address order after $5 (keyset on the unique email index), matching
-- the search text $1 (an ILIKE pattern over the address, the CRM user id and the group) and
-- the filters: state $2, server $3, group $4. $6 rows at most.
SELECT m.id, m.email, m.crm_user_id, s.name AS server, m.server_group, m.state, m.state_reason,
    m.failure_count, m.last_express_at, m.last_complete_at
FROM sync.mailboxes m JOIN sync.servers s ON s.id = m.server_id
WHERE ($1::text IS NULL OR m.email ILIKE $1 OR m.crm_user_id ILIKE $1 OR m.server_group ILIKE $1)
  AND ($2::text IS NULL OR m.state = $2)
  AND ($3::bigint IS NULL OR m.server_id = $3)
  AND ($4::text IS NULL OR m.server_group = $4)
  AND m.email > $5
ORDER BY m.email LIMIT $6

-- name: console_mailbox_count
-- How many mailboxes the search and filters of console_mailbox_page match.
SELECT count(*)
FROM sync.mailboxes m
WHERE ($1::text IS NULL OR m.email ILIKE $1 OR m.crm_user_id ILIKE $1 OR m.server_group ILIKE $1)
  AND ($2::text IS NULL OR m.state = $2)
  AND ($3::bigint IS NULL OR m.server_id = $3)
  AND ($4::text IS NULL OR m.server_group = $4)

-- name: console_groups
-- The server groups in use, for the filter's choices.
SELECT DISTINCT server_group FROM sync.mailboxes WHERE server_group IS NOT NULL
ORDER BY 1 LIMIT 500

-- name: console_server_mailboxes
-- Mailboxes per server and state.
SELECT server_id, state, count(*) AS n FROM sync.mailboxes GROUP BY 1, 2

-- name: console_activity
-- Passes and items written per hour since $1 (runs_started_idx), real passes and dry runs
-- apart; counts are {entity: {direction: {operation: n}}}, summed only where not empty (most
-- passes write nothing).
SELECT date_trunc('hour', r.started_at) AS hour,
    count(*) FILTER (WHERE NOT r.dry_run) AS passes,
    count(*) FILTER (WHERE NOT r.dry_run AND r.outcome NOT IN ('ok', 'skipped')) AS failed,
    COALESCE(sum(CASE WHEN r.counts = '{}' THEN 0 ELSE (
        SELECT sum(v::text::bigint)
        FROM jsonb_path_query(r.counts, 'strict $.*.*.* ? (@.type() == "number")') v
    ) END) FILTER (WHERE NOT r.dry_run), 0) AS writes
FROM sync.runs r
WHERE r.started_at >= $1
GROUP BY 1 ORDER BY 1

-- name: console_throttling
-- Passes, requests and throttled answers per server since $1 (from runs_started_idx; servers
-- without a pass since then are absent).
SELECT m.server_id, count(*) AS passes, COALESCE(sum(r.requests), 0) AS requests,
    COALESCE(sum(r.throttled), 0) AS throttled
FROM sync.runs r JOIN sync.mailboxes m ON m.id = r.mailbox_id
WHERE r.started_at >= $1
GROUP BY 1

-- name: console_folder_links
-- The folders a mailbox syncs (NULL folder: the entity's distinguished folder).
SELECT entity, folder_id, sync_state IS NOT NULL AS has_sync_state, updated_at
FROM sync.folder_links WHERE mailbox_id = $1 ORDER BY entity
