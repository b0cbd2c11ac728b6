-- Carrying a mailbox to another server, its links kept. Owned by db/moves.py.

-- name: move_links
-- The link rows of mailbox $1 and entity $2 (crm id, item id; '' for a create not yet made).
SELECT crm_id, exchange_id FROM sync.item_links
WHERE mailbox_id = $1 AND entity = $2
ORDER BY crm_id

-- name: move_relink
-- Point link ($1, $2, crm id $3) at item $4 of the new server. The change key is emptied: the
-- first pass there compares the item's content with the row instead of trusting a key of
-- the other server.
UPDATE sync.item_links SET exchange_id = $4, change_key = '', updated_at = now()
WHERE mailbox_id = $1 AND entity = $2 AND crm_id = $3

-- name: move_reset_folders
-- The old server's sync states and folder ids mean nothing on the new one.
UPDATE sync.folder_links SET sync_state = NULL, folder_id = NULL, updated_at = now()
WHERE mailbox_id = $1

-- name: move_switch_server
-- Serve mailbox $1 from server $2, active again (it may have been stopped by the move).
UPDATE sync.mailboxes
SET server_id = $2, state = 'active', state_reason = NULL, failure_count = 0,
    last_error = NULL, updated_at = now()
WHERE id = $1

-- name: move_hold
-- Stop mailbox $1 for its move (no pass is claimed for a stopped mailbox) unless a pass of it
-- is running; its state and reason of before, or no row when a pass runs. The row lock makes
-- two moves of one mailbox wait for each other.
WITH before AS (
    SELECT id, state, state_reason FROM sync.mailboxes WHERE id = $1 FOR UPDATE
), held AS (
    UPDATE sync.mailboxes m SET state = 'disabled', state_reason = $2, updated_at = now()
    FROM before b
    WHERE m.id = b.id
      AND NOT EXISTS (SELECT 1 FROM sync.jobs j WHERE j.mailbox_id = $1 AND j.status = 'running')
    RETURNING m.id
)
SELECT b.state, b.state_reason FROM before b JOIN held h ON h.id = b.id

-- name: move_release
-- A move that did not happen: mailbox $1 gets its state $2 and reason $3 of before back.
UPDATE sync.mailboxes SET state = $2, state_reason = $3, updated_at = now() WHERE id = $1
