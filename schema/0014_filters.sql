-- Sync filters and the link rows of item pairs that left one.
--
-- A filter setting is a JSON object with some of the keys categories, exclude_private,
-- calendar_range and block (checked by sync_service.planning.filters.check_setting before it
-- is stored). A server's setting is the default of its mailboxes; a key a mailbox's setting
-- gives overrides the server's, key by key ('{}': everything inherited).
ALTER TABLE sync.servers ADD COLUMN filters jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(filters) = 'object');
ALTER TABLE sync.mailboxes ADD COLUMN filters jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(filters) = 'object');

-- An item pair that left the filter: its link row is moved here, never planned, and its items
-- are left as they are on both sides (nothing is deleted because of a filter). The row is moved
-- back when both items are in the filter again, and dropped once both are gone. The columns
-- are those of sync.item_links, so that a row comes back as it left.
CREATE TABLE sync.parked_links (
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    crm_id          text NOT NULL,
    exchange_id     text NOT NULL,
    change_key      text NOT NULL DEFAULT '',
    crm_hash        text NOT NULL,
    exchange_hash   text NOT NULL,
    synced_fields   jsonb NOT NULL,
    pending         text NOT NULL DEFAULT '' CHECK (pending IN ('', 'crm', 'exchange')),
    intent_hash     text NOT NULL DEFAULT '',
    intent_run      bigint,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, entity, crm_id)
);
