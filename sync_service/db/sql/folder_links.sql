-- Folder links: the folder each mailbox entity syncs. Owned by db/folder_links.py.

-- name: folder_link_set
-- Link ($1, $2) to choice ($3 by, $4 value; NULL NULL: the default folder) with $5 (make
-- missing folders). The folder is resolved again by the next pass, which also lists it in
-- full and matches it afresh (rematch); the old folder's sync state means nothing for it.
-- No row when the link is already that choice (nothing to reset).
INSERT INTO sync.folder_links AS f (mailbox_id, entity, choice_by, choice_value,
    create_missing, rematch, link_generation)
VALUES ($1, $2, $3, $4, $5, true, 1)
ON CONFLICT (mailbox_id, entity) DO UPDATE SET
    choice_by = EXCLUDED.choice_by, choice_value = EXCLUDED.choice_value,
    create_missing = EXCLUDED.create_missing, folder_id = NULL, folder_path = NULL,
    sync_state = NULL, folder_error = NULL, folder_error_at = NULL, rematch = true,
    link_generation = f.link_generation + 1, updated_at = now()
WHERE (f.choice_by, f.choice_value) IS DISTINCT FROM (EXCLUDED.choice_by, EXCLUDED.choice_value)
   OR f.folder_error IS NOT NULL OR f.create_missing <> EXCLUDED.create_missing
RETURNING f.link_generation

-- name: folder_link_bulk_set
-- The rows of an import ($1: a JSON array of {email, entity, by, value, create}) in one
-- statement, as folder_link_set does one; the emails that name no mailbox come back.
WITH r AS (
    SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS r(
        line int, email text, entity text, by text, value text, "create" boolean)
), found AS (
    SELECT r.*, m.id AS mailbox_id FROM r LEFT JOIN sync.mailboxes m ON m.email = r.email
), linked AS (
    INSERT INTO sync.folder_links AS f (mailbox_id, entity, choice_by, choice_value,
        create_missing, rematch, link_generation)
    SELECT mailbox_id, entity, by, value, "create", true, 1 FROM found
    WHERE mailbox_id IS NOT NULL
    ON CONFLICT (mailbox_id, entity) DO UPDATE SET
        choice_by = EXCLUDED.choice_by, choice_value = EXCLUDED.choice_value,
        create_missing = EXCLUDED.create_missing, folder_id = NULL, folder_path = NULL,
        sync_state = NULL, folder_error = NULL, folder_error_at = NULL, rematch = true,
        link_generation = f.link_generation + 1, updated_at = now()
    WHERE (f.choice_by, f.choice_value) IS DISTINCT FROM (EXCLUDED.choice_by, EXCLUDED.choice_value)
       OR f.folder_error IS NOT NULL OR f.create_missing <> EXCLUDED.create_missing
    RETURNING 1
)
SELECT (SELECT count(*) FROM linked) AS changed,
       COALESCE((SELECT jsonb_agg(jsonb_build_array(line, email) ORDER BY line)
                 FROM found WHERE mailbox_id IS NULL), '[]'::jsonb) AS unknown

-- name: folder_links_of
-- Every entity's link of mailbox $1 (the entities without a row: the default folder).
SELECT entity, choice_by, choice_value, create_missing, folder_id, folder_path, folder_error,
       folder_error_at, rematch, link_generation
FROM sync.folder_links WHERE mailbox_id = $1 ORDER BY entity

-- name: folder_link_resolved
-- The folder a pass resolved link ($1, $2) of generation $3 to ($4 id, $5 display path).
UPDATE sync.folder_links SET folder_id = $4, folder_path = $5, updated_at = now()
WHERE mailbox_id = $1 AND entity = $2 AND link_generation = $3

-- name: folder_link_failed
-- Link ($1, $2) of generation $3 cannot be served: why ($4). Its entity is left out of the
-- mailbox's passes until the link is set again or cleared.
UPDATE sync.folder_links SET folder_error = $4, folder_error_at = now(), updated_at = now()
WHERE mailbox_id = $1 AND entity = $2 AND link_generation = $3

-- name: folder_link_drop_item_links
-- Before a pass matches a newly linked folder afresh: the links of the folder before.
DELETE FROM sync.item_links WHERE mailbox_id = $1 AND entity = $2

-- name: folder_link_settled
-- After a pass that read the entities $2 (generations $3, folder ids $4): the fresh match is
-- done, and the folder id is kept (a pass's end writes the sync state row over it).
UPDATE sync.folder_links f SET rematch = false, folder_id = t.folder_id, updated_at = now()
FROM unnest($2::text[], $3::int[], $4::text[]) AS t(entity, generation, folder_id)
WHERE f.mailbox_id = $1 AND f.entity = t.entity AND f.link_generation = t.generation

-- name: folder_link_errors
-- How many mailbox entities have a link that cannot be served (status).
SELECT count(*) FROM sync.folder_links WHERE folder_error IS NOT NULL
