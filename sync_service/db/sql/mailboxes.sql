-- name: server_insert
INSERT INTO sync.servers (name, backend, url, auth_kind, username, tenant, client_id, authority,
    secret_env, secret_file, ca_file, time_zone, express_interval, complete_at, max_concurrency,
    rate_per_second, scope, certificate_file)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
RETURNING *

-- name: server_list
SELECT * FROM sync.servers ORDER BY name

-- name: server_get
SELECT * FROM sync.servers WHERE id = $1

-- name: server_get_by_name
SELECT * FROM sync.servers WHERE name = $1

-- name: mailbox_upsert
-- Import: insert or update by CRM user id; the state of an existing mailbox is kept.
INSERT INTO sync.mailboxes AS m (crm_user_id, email, server_id, server_group, contacts_mode,
    calendar_mode, tasks_mode)
VALUES ($1, lower($2), $3, $4, $5, $6, $7)
ON CONFLICT (crm_user_id) DO UPDATE SET
    email = EXCLUDED.email, server_id = EXCLUDED.server_id, server_group = EXCLUDED.server_group,
    contacts_mode = EXCLUDED.contacts_mode, calendar_mode = EXCLUDED.calendar_mode,
    tasks_mode = EXCLUDED.tasks_mode, updated_at = now()
RETURNING *, (xmax = 0) AS inserted

-- name: mailbox_get
SELECT * FROM sync.mailboxes WHERE id = $1

-- name: mailbox_get_by_email
SELECT * FROM sync.mailboxes WHERE email = lower($1)

-- name: mailbox_list
-- Filters are optional: NULL matches everything. Keyset pagination on id.
SELECT * FROM sync.mailboxes
WHERE ($1::text IS NULL OR state = $1)
  AND ($2::text[] IS NULL OR server_group = ANY($2))
  AND ($3::bigint IS NULL OR server_id = $3)
  AND id > $4
ORDER BY id LIMIT $5

-- name: mailbox_set_state
UPDATE sync.mailboxes SET state = $2, state_reason = $3, updated_at = now()
    , failure_count = CASE WHEN $2 = 'active' THEN 0 ELSE failure_count END
WHERE id = $1

-- name: mailbox_pass_end
-- A successful (non-dry-run) pass, in one statement: the folders' sync states and the CRM
-- watermarks that moved ($5 entities, $6 sync states, $7 watermarks; empty arrays for none),
-- then the mailbox row: failures reset, when, the marker generation.
WITH folders AS (
    INSERT INTO sync.folder_links (mailbox_id, entity, folder_id, sync_state)
    SELECT $1, t.entity, NULL, t.sync_state
    FROM unnest($5::text[], $6::text[]) AS t(entity, sync_state)
    ON CONFLICT (mailbox_id, entity) DO UPDATE SET
        -- the folder a link resolved to stays (db/folder_links.py owns it): only the state moves
        sync_state = EXCLUDED.sync_state, updated_at = now()
), watermarks AS (
    INSERT INTO sync.crm_watermarks (mailbox_id, entity, last_seq)
    SELECT $1, t.entity, t.last_seq FROM unnest($5::text[], $7::bigint[]) AS t(entity, last_seq)
    ON CONFLICT (mailbox_id, entity) DO UPDATE SET
        last_seq = EXCLUDED.last_seq, updated_at = now()
)
UPDATE sync.mailboxes SET failure_count = 0, last_error = NULL,
    initial_done = initial_done OR $2 IN ('initial', 'complete', 'recover'),
    last_express_at = now(),
    last_complete_at = CASE WHEN $2 IN ('initial', 'complete', 'recover') THEN now()
                            ELSE last_complete_at END,
    marker_generation = $3, marker_at = $4,
    state = CASE WHEN $2 = 'recover' AND state = 'needs_recovery' THEN 'active' ELSE state END,
    state_reason = CASE WHEN $2 = 'recover' AND state = 'needs_recovery' THEN NULL
                        ELSE state_reason END,
    updated_at = now()
WHERE id = $1

-- name: mailbox_pass_failed
-- A transient failure: count it; past the limit the mailbox is disabled until an operator acts.
UPDATE sync.mailboxes SET failure_count = failure_count + 1, last_error = $2::text,
    state = CASE WHEN failure_count + 1 >= $3 THEN 'disabled' ELSE state END,
    state_reason = CASE WHEN failure_count + 1 >= $3
        THEN format('%s consecutive transient failures; last: %s', failure_count + 1, $2::text)
        ELSE state_reason END,
    updated_at = now()
WHERE id = $1
RETURNING state

-- name: mailbox_set_options
UPDATE sync.mailboxes SET
    server_group = CASE WHEN $2 THEN $3 ELSE server_group END,
    contacts_mode = COALESCE($4, contacts_mode),
    calendar_mode = COALESCE($5, calendar_mode),
    tasks_mode = COALESCE($6, tasks_mode),
    updated_at = now()
WHERE email = lower($1)
RETURNING *

-- name: mailbox_counts_by_state
SELECT state, count(*) AS n FROM sync.mailboxes GROUP BY state

-- name: mailbox_pushed
-- A push (notification) asked for a pass: the express sweep can skip this mailbox meanwhile.
UPDATE sync.mailboxes SET last_push_at = now() WHERE id = $1

-- name: server_update
-- Replace every setting of a server (the caller merged and validated the changes).
UPDATE sync.servers SET backend = $2, url = $3, auth_kind = $4, username = $5, tenant = $6,
    client_id = $7, authority = $8, secret_env = $9, secret_file = $10, ca_file = $11,
    time_zone = $12, express_interval = $13, complete_at = $14, max_concurrency = $15,
    rate_per_second = $16, scope = $17, certificate_file = $18, updated_at = now()
WHERE name = $1
RETURNING *

-- name: server_mailbox_count
SELECT count(*) FROM sync.mailboxes m JOIN sync.servers s ON s.id = m.server_id WHERE s.name = $1

-- name: server_delete
-- Only a server without mailboxes can go (their links and history refer to it).
DELETE FROM sync.servers s WHERE s.name = $1
  AND NOT EXISTS (SELECT 1 FROM sync.mailboxes m WHERE m.server_id = s.id)
RETURNING s.id

-- name: mailbox_owners
-- Which CRM user owns each of these addresses now (import: an address belongs to one user).
SELECT crm_user_id, email FROM sync.mailboxes WHERE email = ANY($1::text[])
