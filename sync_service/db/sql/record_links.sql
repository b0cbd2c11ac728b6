-- Named queries of shared (firm) records, owned by db/record_links.py: who holds a record
-- (its owner unless dropped, its linked users; schema/0016_shared_records.sql), the owner's
-- delete of a record others hold, and the operator's links.

-- name: record_links_shared
-- The records among $2 (entity $1) held by more than one user.
SELECT l.record_id::text AS id
FROM (SELECT DISTINCT record_id FROM crm.record_users
      WHERE entity = $1 AND record_id = ANY ($2::uuid[])) AS l
WHERE cardinality(crm.record_user_ids($1, l.record_id, crm.record_owner($1, l.record_id))) > 1

-- name: record_links_dropped
-- Records of entity $1 that user $2 owns but dropped (not in that user's sync set).
SELECT record_id::text AS id FROM crm.owner_drops WHERE entity = $1 AND owner_id = $2::uuid

-- name: record_links_first_linked
-- The user linked first to record $2 (entity $1): who a transfer hands the record to.
SELECT user_id::text AS user_id FROM crm.record_users
WHERE entity = $1 AND record_id = $2::uuid
ORDER BY linked_at, user_id
LIMIT 1

-- name: record_links_drop_owner
-- The owner $3 of record $2 stops holding it (their mailbox copy goes; the trigger logs it).
INSERT INTO crm.owner_drops (entity, record_id, owner_id) VALUES ($1, $2::uuid, $3::uuid)
ON CONFLICT DO NOTHING

-- name: record_links_transfer
SELECT crm.transfer_record($1, $2::uuid, $3::uuid)

-- name: record_links_users_by_email
SELECT id::text AS id, lower(email) AS email FROM crm.users WHERE lower(email) = ANY ($1::text[])

-- name: record_links_owners
-- The owner of each record among $2 of entity $1 (records that do not exist are left out).
SELECT r.id::text AS id, o.owner_id::text AS owner_id
FROM unnest($2::uuid[]) AS r (id)
CROSS JOIN LATERAL (SELECT crm.record_owner($1, r.id) AS owner_id) AS o
WHERE o.owner_id IS NOT NULL

-- name: record_links_link_many
-- Link users to records: $1 a JSON array of {entity, record_id, user_id}. An owner who had
-- dropped the record holds it again; other users get a link. How many changed.
WITH given AS (
    SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS g (entity text, record_id uuid, user_id uuid)
), restored AS (
    DELETE FROM crm.owner_drops AS d USING given AS g
    WHERE d.entity = g.entity AND d.record_id = g.record_id AND d.owner_id = g.user_id
    RETURNING 1
), linked AS (
    INSERT INTO crm.record_users (entity, record_id, user_id)
    SELECT g.entity, g.record_id, g.user_id FROM given AS g
    WHERE g.user_id IS DISTINCT FROM crm.record_owner(g.entity, g.record_id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM restored) + (SELECT count(*) FROM linked)

-- name: record_links_unlink_many
-- Remove links: $1 a JSON array of {entity, record_id, user_id}. How many went.
WITH gone AS (
    DELETE FROM crm.record_users AS u
    USING jsonb_to_recordset($1::text::jsonb) AS g (entity text, record_id uuid, user_id uuid)
    WHERE u.entity = g.entity AND u.record_id = g.record_id AND u.user_id = g.user_id
    RETURNING 1
)
SELECT count(*) FROM gone

-- name: record_links_holders
-- Who holds record $2 of entity $1: the owner (held unless dropped) and the linked users.
SELECT u.email, 'owner' AS role, d.owner_id IS NULL AS holds, NULL::timestamptz AS linked_at
FROM crm.users AS u
LEFT JOIN crm.owner_drops AS d ON d.entity = $1 AND d.record_id = $2::uuid AND d.owner_id = u.id
WHERE u.id = crm.record_owner($1, $2::uuid)
UNION ALL
SELECT u.email, 'linked', true, l.linked_at
FROM crm.record_users AS l JOIN crm.users AS u ON u.id = l.user_id
WHERE l.entity = $1 AND l.record_id = $2::uuid
ORDER BY role DESC, linked_at, email
