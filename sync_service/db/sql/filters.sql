-- name: filters_of_mailbox
-- A mailbox's filter settings (its server's and its own) and the entities that have parked
-- link rows: what a pass needs to know before it screens its reads.
SELECT s.filters AS server_filters, m.filters AS mailbox_filters,
       ARRAY(SELECT DISTINCT p.entity FROM sync.parked_links AS p
             WHERE p.mailbox_id = m.id) AS parked
FROM sync.mailboxes AS m JOIN sync.servers AS s ON s.id = m.server_id
WHERE m.id = $1

-- name: parked_links_list
SELECT crm_id, exchange_id, change_key, crm_hash, exchange_hash, synced_fields, pending,
       intent_hash
FROM sync.parked_links WHERE mailbox_id = $1 AND entity = $2

-- name: links_park
-- Move link rows ($3: CRM ids) of pairs that left the filter aside, as they are.
WITH moved AS (
    DELETE FROM sync.item_links
    WHERE mailbox_id = $1 AND entity = $2 AND crm_id = ANY ($3::text[])
    RETURNING *
)
INSERT INTO sync.parked_links (mailbox_id, entity, crm_id, exchange_id, change_key, crm_hash,
    exchange_hash, synced_fields, pending, intent_hash, intent_run)
SELECT mailbox_id, entity, crm_id, exchange_id, change_key, crm_hash, exchange_hash,
       synced_fields, pending, intent_hash, intent_run
FROM moved
ON CONFLICT (mailbox_id, entity, crm_id) DO UPDATE SET
    exchange_id = EXCLUDED.exchange_id, change_key = EXCLUDED.change_key,
    crm_hash = EXCLUDED.crm_hash, exchange_hash = EXCLUDED.exchange_hash,
    synced_fields = EXCLUDED.synced_fields, pending = EXCLUDED.pending,
    intent_hash = EXCLUDED.intent_hash, intent_run = EXCLUDED.intent_run, parked_at = now()

-- name: links_restore
-- Move parked rows back among the links: $3 their CRM ids, $4 and $5 the item id and change
-- key each comes back with (another id when its item was found under a new one). A link made
-- meanwhile for either item is kept (the parked row then goes).
WITH given AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::text[]) AS g(crm_id, new_id, new_key)
), moved AS (
    DELETE FROM sync.parked_links AS p USING given AS g
    WHERE p.mailbox_id = $1 AND p.entity = $2 AND p.crm_id = g.crm_id
    RETURNING p.*, g.new_id, g.new_key
)
INSERT INTO sync.item_links (mailbox_id, entity, crm_id, exchange_id, change_key, crm_hash,
    exchange_hash, synced_fields, pending, intent_hash, intent_run)
SELECT mailbox_id, entity, crm_id, new_id, new_key, crm_hash, exchange_hash, synced_fields,
       pending, intent_hash, intent_run
FROM moved
ON CONFLICT DO NOTHING

-- name: parked_links_forget
DELETE FROM sync.parked_links WHERE mailbox_id = $1 AND entity = $2 AND crm_id = ANY ($3::text[])

-- name: parked_links_count
SELECT entity, count(*) AS n FROM sync.parked_links WHERE mailbox_id = $1 GROUP BY entity

-- name: server_filters_get
SELECT filters FROM sync.servers WHERE name = $1

-- name: server_filters_set
UPDATE sync.servers SET filters = $2::text::jsonb, updated_at = now() WHERE name = $1
RETURNING filters

-- name: mailbox_filters_get
SELECT m.filters, s.filters AS server_filters
FROM sync.mailboxes AS m JOIN sync.servers AS s ON s.id = m.server_id
WHERE m.email = lower($1)

-- name: mailbox_filters_set
UPDATE sync.mailboxes SET filters = $2::text::jsonb, updated_at = now()
WHERE email = lower($1)
RETURNING filters
