-- Every run ends in a final state, whatever happens to the process that ran it, and its counts
-- are the writes it made, added as they commit.
--
-- New outcomes: 'cancelled' (the service stopped and its drain time ran out), 'timed_out' (the
-- pass exceeded SYNC_PASS_TIMEOUT) and 'lost' (the engine stopped renewing the job's lease; the
-- run is closed by whoever gives the job back to the queue).
ALTER TABLE sync.runs DROP CONSTRAINT runs_outcome_check;
ALTER TABLE sync.runs ADD CONSTRAINT runs_outcome_check CHECK (outcome IN
    ('ok', 'failed', 'guarded', 'transient', 'skipped', 'cancelled', 'timed_out', 'lost'));

-- The runs still open are few: closing those of a job handed back is an index look-up.
CREATE INDEX runs_open_idx ON sync.runs (job_id) WHERE finished_at IS NULL;

-- The run that committed a pending create's intent. A create made just before its pass was cut
-- short is linked by a later pass, which finds the item (or record) made; that create is then
-- counted for the run that made it, not for the one that found it.
ALTER TABLE sync.item_links ADD COLUMN intent_run bigint;

-- counts plus some writes of one entity: counts is {entity: {direction: {operation: n}}} and
-- writes a JSON array of [direction, operation, n]; missing keys start at 0.
CREATE FUNCTION sync.run_counts_add(counts jsonb, entity text, writes jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    w jsonb;
BEGIN
    FOR w IN SELECT value FROM jsonb_array_elements(writes) LOOP
        counts := jsonb_set(counts, ARRAY[entity], COALESCE(counts -> entity, '{}'));
        counts := jsonb_set(counts, ARRAY[entity, w ->> 0],
                            COALESCE(counts -> entity -> (w ->> 0), '{}'));
        counts := jsonb_set(counts, ARRAY[entity, w ->> 0, w ->> 1], to_jsonb(
            COALESCE((counts -> entity -> (w ->> 0) ->> (w ->> 1))::bigint, 0)
            + (w ->> 2)::bigint));
    END LOOP;
    RETURN counts;
END
$$;

-- The direction of the create a pending link row intended ('exchange': an item made from a CRM
-- record; 'crm': a record made from an item).
CREATE FUNCTION sync.created_direction(pending text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE pending WHEN 'exchange' THEN 'crm_to_exchange' WHEN 'crm' THEN 'exchange_to_crm' END
$$;

-- What a run is now, for the operator: its outcome once it ended; NULL (running) while its
-- engine holds its job under a live lease; else 'lost': the engine stopped, and nobody has
-- reaped the job and closed the run yet. ($1 outcome, $2 job id, $3 engine.)
CREATE FUNCTION sync.run_outcome(text, bigint, text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE($1, CASE WHEN EXISTS (
        SELECT 1 FROM sync.jobs AS j
        WHERE j.id = $2 AND j.status = 'running' AND j.lease_owner = $3
          AND j.lease_expires_at >= now()) THEN NULL ELSE 'lost' END)
$$;

-- Runs left open by engines that stopped before this migration (nothing closed them then):
-- lost, unless an engine still holds their job under a live lease.
UPDATE sync.runs AS r SET finished_at = now(), outcome = 'lost',
    error = 'the engine stopped without ending the run (closed by migration 0006)'
WHERE r.finished_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM sync.jobs AS j
                  WHERE j.id = r.job_id AND j.status = 'running' AND j.lease_owner = r.engine
                    AND j.lease_expires_at > now());
