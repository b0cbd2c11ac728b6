-- Dry runs apart from real passes, the plan of a dry run item by item, and item-level findings
-- an operator can act on.

-- A dry run and a real pass of one mailbox are separate jobs: a dry run requested while a real
-- pass waits no longer turns into that real pass (nor a real request into a dry run). Requests
-- still coalesce with the unfinished job of their own kind.
DROP INDEX sync.jobs_one_open_per_mailbox;
CREATE UNIQUE INDEX jobs_one_open_per_mailbox ON sync.jobs (mailbox_id, dry_run)
    WHERE status IN ('queued', 'running');
-- One pass of a mailbox at a time, whatever its kind: the claim skips a job whose mailbox has
-- a pass running, and this index refuses the second of two claims that raced each other.
CREATE UNIQUE INDEX jobs_one_running_per_mailbox ON sync.jobs (mailbox_id)
    WHERE status = 'running';
-- The claim's order in full (jobs_claim_idx lacked the id): a claim reads the first due jobs
-- in order instead of sorting every queued one.
DROP INDEX sync.jobs_claim_idx;
CREATE INDEX jobs_claim_idx ON sync.jobs (priority DESC, run_after, id) WHERE status = 'queued';
-- Open dry runs are few: the claim looks them up to let a mailbox's first job go first.
CREATE INDEX jobs_open_dry_run_idx ON sync.jobs (mailbox_id)
    WHERE dry_run AND status IN ('queued', 'running');

-- A dry run's plan as data: {"entities": [...], "items": [...], "ambiguities": [...],
-- "omitted": n}, each item with its entity, action, direction and the fields that would
-- change (before -> after, long values cut). `plan` keeps the rendered text.
ALTER TABLE sync.runs ADD COLUMN plan_items jsonb;

-- Item errors gain a kind: 'refused' (the other side refused a write; the item is skipped
-- until its content changes) or 'ambiguous_match' (an initial or recover pass found several
-- candidates for a match and created each item on the other side instead of guessing).
ALTER TABLE sync.item_errors ADD COLUMN kind text NOT NULL DEFAULT 'refused'
    CHECK (kind IN ('refused', 'ambiguous_match'));
-- What a finding is about beyond one item: for an ambiguous match the CRM ids and Exchange ids
-- of the group, the matching key, and what the pass did.
ALTER TABLE sync.item_errors ADD COLUMN detail jsonb;
-- Acknowledged: kept and listed, no longer counted as open (sync_item_errors_open).
ALTER TABLE sync.item_errors ADD COLUMN acknowledged_at timestamptz;
-- Retry asked: the refused content (content_hash, which the passes skip) moves here, so the
-- next pass writes the item again; a new refusal is a new row.
ALTER TABLE sync.item_errors ADD COLUMN retried_at timestamptz;
ALTER TABLE sync.item_errors ADD COLUMN retried_hash text;
-- Open errors are few and counted on every metrics refresh.
CREATE INDEX item_errors_open_idx ON sync.item_errors (entity, kind)
    WHERE acknowledged_at IS NULL AND retried_at IS NULL;
