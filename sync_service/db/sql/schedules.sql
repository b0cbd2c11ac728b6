-- name: schedule_upsert
-- Create or replace the schedule named $1 ($2 server id or NULL, $3 groups or NULL, $4 entities
-- or NULL, $5 express interval or NULL for none).
INSERT INTO sync.schedules AS s (name, server_id, groups, entities, express_interval)
VALUES ($1, $2, $3::text[], sync.entity_set($4::text[]), $5)
ON CONFLICT (name) DO UPDATE SET server_id = EXCLUDED.server_id, groups = EXCLUDED.groups,
    entities = EXCLUDED.entities, express_interval = EXCLUDED.express_interval,
    updated_at = now()
RETURNING (xmax = 0) AS inserted

-- name: schedule_delete
DELETE FROM sync.schedules WHERE name = $1 RETURNING id

-- name: schedule_list
-- Every schedule with its server's name, optionally those of one server ($1) and those of
-- every server.
SELECT s.name, sv.name AS server, s.groups, s.entities, s.express_interval, s.updated_at
FROM sync.schedules s LEFT JOIN sync.servers sv ON sv.id = s.server_id
WHERE $1::bigint IS NULL OR s.server_id = $1 OR s.server_id IS NULL
ORDER BY s.name

-- name: schedule_rules
-- What the express sweep reads of every schedule, once a tick.
SELECT server_id, groups, entities, express_interval FROM sync.schedules ORDER BY id

-- name: schedule_entity_mailboxes
-- The active mailboxes of server $1 (limited to groups $2 if given) as the per-entity sweep
-- sees them: modes, and when each entity last had a successful pass (an entity without a
-- dated pass falls back to the mailbox's last pass of any kind). One hash join over the
-- server's rows, not a look-up per mailbox.
SELECT m.id, m.server_group, m.initial_done, m.contacts_mode, m.calendar_mode, m.tasks_mode,
       COALESCE(max(e.last_pass_at) FILTER (WHERE e.entity = 'contact'), m.last_express_at)
           AS contact_at,
       COALESCE(max(e.last_pass_at) FILTER (WHERE e.entity = 'appointment'), m.last_express_at)
           AS appointment_at,
       COALESCE(max(e.last_pass_at) FILTER (WHERE e.entity = 'task'), m.last_express_at)
           AS task_at
FROM sync.mailboxes m
LEFT JOIN sync.entity_passes e ON e.mailbox_id = m.id
WHERE m.server_id = $1 AND m.state = 'active'
  AND ($2::text[] IS NULL OR m.server_group = ANY($2))
GROUP BY m.id
ORDER BY m.id
