-- Entity scope: a job and a run may name the entities they cover, and schedules may give each
-- entity, each server and each set of server groups a cadence of its own.
--
-- An entity set is a sorted array of distinct entity names; NULL means every entity (a set
-- naming all three is stored as NULL, so that "all" has one spelling).

CREATE FUNCTION sync.entity_set(entities text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN entities IS NULL OR cardinality(entities) = 0 THEN NULL
                WHEN ARRAY['appointment', 'contact', 'task'] <@ entities THEN NULL
                ELSE ARRAY(SELECT DISTINCT e FROM unnest(entities) AS e ORDER BY e) END
$$;

-- The union of two entity sets (NULL, every entity, absorbs the other).
CREATE FUNCTION sync.entity_union(a text[], b text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE sync.entity_set(a || b) END
$$;

-- `entities`: what the job's pass covers. `rerun_entities`: what its rerun covers (read with
-- rerun_kind): the running job's entities and those of the requests that arrived meanwhile.
ALTER TABLE sync.jobs ADD COLUMN entities text[]
    CHECK (entities IS NULL OR (cardinality(entities) > 0
                                AND entities <@ ARRAY['appointment', 'contact', 'task']));
ALTER TABLE sync.jobs ADD COLUMN rerun_entities text[]
    CHECK (rerun_entities IS NULL OR (cardinality(rerun_entities) > 0
                                AND rerun_entities <@ ARRAY['appointment', 'contact', 'task']));
-- What the run's pass covered (NULL: every entity whose mode is not off).
ALTER TABLE sync.runs ADD COLUMN entities text[];

-- When each entity of a mailbox last had a successful (non-dry) pass: the per-entity
-- schedules measure their cadence from it. Kept by the trigger below from the runs that end
-- 'ok', whichever statement ends them; an entity without a row falls back to the mailbox's
-- last_express_at (any successful pass).
CREATE TABLE sync.entity_passes (
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    last_pass_at    timestamptz NOT NULL,
    PRIMARY KEY (mailbox_id, entity)
);

-- A mailbox's passes so far covered every entity: each entity's last pass is the mailbox's.
INSERT INTO sync.entity_passes (mailbox_id, entity, last_pass_at)
SELECT m.id, e, m.last_express_at
FROM sync.mailboxes AS m, unnest(ARRAY['appointment', 'contact', 'task']) AS e
WHERE m.last_express_at IS NOT NULL;

CREATE FUNCTION sync.run_entity_passes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync.entity_passes (mailbox_id, entity, last_pass_at)
    SELECT NEW.mailbox_id, e, NEW.finished_at
    FROM unnest(COALESCE(NEW.entities, ARRAY['appointment', 'contact', 'task'])) AS e
    ON CONFLICT (mailbox_id, entity) DO UPDATE
        SET last_pass_at = GREATEST(sync.entity_passes.last_pass_at, EXCLUDED.last_pass_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_entity_passes AFTER UPDATE OF outcome ON sync.runs
    FOR EACH ROW
    WHEN (NEW.outcome = 'ok' AND OLD.outcome IS DISTINCT FROM 'ok' AND NOT NEW.dry_run
          AND NEW.finished_at IS NOT NULL)
    EXECUTE FUNCTION sync.run_entity_passes();

-- Express schedules beyond a server's own express_interval. A schedule covers the mailboxes
-- of one server (NULL: of every server), of some server groups (NULL: of any group or none),
-- and some entities (NULL: every entity). For one mailbox and entity the most specific
-- schedule that covers it decides (groups first, then entities, then server); among equally
-- specific ones the shortest interval. `express_interval` NULL: no express sweep for what the
-- schedule covers (push, the CRM feed, complete passes and operators still run it). Nothing
-- covered by a schedule: the server's express_interval, as before this migration.
CREATE TABLE sync.schedules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    server_id       bigint REFERENCES sync.servers (id) ON DELETE CASCADE,
    groups          text[] CHECK (groups IS NULL OR cardinality(groups) > 0),
    entities        text[]
        CHECK (entities IS NULL OR (cardinality(entities) > 0
                                    AND entities <@ ARRAY['appointment', 'contact', 'task'])),
    express_interval interval CHECK (express_interval > interval '0'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (server_id IS NOT NULL OR groups IS NOT NULL)
);
CREATE INDEX schedules_server_idx ON sync.schedules (server_id);
