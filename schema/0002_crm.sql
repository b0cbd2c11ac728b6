-- The bundled CRM schema: users, contacts, appointments, tasks, sharing links, change capture.
--
-- For CRMs that share their database (or replicate into one). A deleted record is simply a
-- deleted row. Every write to a record, to its attendees or to its sharing links is captured by
-- triggers in crm.change_log and announced with NOTIFY crm_changes (payload: the entity).
--
-- Writes made by the sync service on behalf of mailbox user U run in a transaction that first
-- does `SELECT set_config('crm.sync_origin', U, true)`: the log row then carries
-- origin_user_id = U so that the change is not sent back to U's mailbox (no echo).

CREATE SCHEMA IF NOT EXISTS crm;

CREATE TABLE crm.users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           text NOT NULL UNIQUE CHECK (char_length(email) BETWEEN 3 AND 320),
    display_name    text CHECK (char_length(display_name) <= 256)
);

-- Categories: a bounded list of short, non-empty names (a CHECK cannot hold a subquery).
CREATE FUNCTION crm.categories_ok(cats text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN coalesce(array_length(cats, 1), 0) <= 100
    AND array_ndims(cats) IS DISTINCT FROM 2
    AND NOT EXISTS (
        SELECT 1 FROM unnest(cats) AS c WHERE c IS NULL OR char_length(c) NOT BETWEEN 1 AND 255
    );

-- Limits follow what a mailbox accepts: one-line fields are short; notes up to 1 MB of text.
CREATE TABLE crm.contacts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid NOT NULL REFERENCES crm.users (id),
    first_name      text CHECK (char_length(first_name) <= 255),
    last_name       text CHECK (char_length(last_name) <= 255),
    email           text CHECK (char_length(email) <= 320),
    email2          text CHECK (char_length(email2) <= 320),
    email3          text CHECK (char_length(email3) <= 320),
    company         text CHECK (char_length(company) <= 255),
    job_title       text CHECK (char_length(job_title) <= 255),
    business_phone  text CHECK (char_length(business_phone) <= 64),
    mobile_phone    text CHECK (char_length(mobile_phone) <= 64),
    home_phone      text CHECK (char_length(home_phone) <= 64),
    street          text CHECK (char_length(street) <= 1024),
    city            text CHECK (char_length(city) <= 255),
    state           text CHECK (char_length(state) <= 255),
    postal_code     text CHECK (char_length(postal_code) <= 64),
    country         text CHECK (char_length(country) <= 255),
    birthday        date,
    categories      text[] NOT NULL DEFAULT '{}' CHECK (crm.categories_ok(categories)),
    notes           text CHECK (char_length(notes) <= 1000000),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1
);
CREATE INDEX contacts_owner_idx ON crm.contacts (owner_id);

CREATE TABLE crm.appointments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid NOT NULL REFERENCES crm.users (id),
    subject         text CHECK (char_length(subject) <= 255),
    starts_at       timestamptz,
    ends_at         timestamptz,
    time_zone       text NOT NULL DEFAULT 'UTC' CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    all_day         boolean NOT NULL DEFAULT false,
    location        text CHECK (char_length(location) <= 255),
    notes           text CHECK (char_length(notes) <= 1000000),
    organizer_email text CHECK (char_length(organizer_email) <= 320),
    is_meeting      boolean NOT NULL DEFAULT false,
    sensitivity     text NOT NULL DEFAULT 'normal'
        CHECK (sensitivity IN ('normal', 'personal', 'private', 'confidential')),
    reminder_minutes integer CHECK (reminder_minutes BETWEEN 0 AND 5256000),  -- up to 10 years
    categories      text[] NOT NULL DEFAULT '{}' CHECK (crm.categories_ok(categories)),
    -- The pattern and the exceptions of a series, in the JSON shape of sync_service.crm.codec.
    recurrence      jsonb CHECK (jsonb_typeof(recurrence) = 'object'),
    modified_occurrences jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(modified_occurrences) = 'array'),
    deleted_occurrences jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(deleted_occurrences) = 'array'),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1,
    CONSTRAINT appointments_ends_at_check CHECK (ends_at >= starts_at)
);
CREATE INDEX appointments_owner_idx ON crm.appointments (owner_id);

CREATE TABLE crm.appointment_attendees (
    appointment_id  uuid NOT NULL REFERENCES crm.appointments (id) ON DELETE CASCADE,
    ord             integer NOT NULL,  -- keeps the order of the list
    email           text NOT NULL CHECK (char_length(email) BETWEEN 1 AND 320),
    name            text CHECK (char_length(name) <= 255),
    required        boolean NOT NULL DEFAULT true,
    PRIMARY KEY (appointment_id, ord)
);

CREATE TABLE crm.tasks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id        uuid NOT NULL REFERENCES crm.users (id),
    subject         text CHECK (char_length(subject) <= 255),
    notes           text CHECK (char_length(notes) <= 1000000),
    starts_at       timestamptz,
    due_at          timestamptz,
    completed_at    timestamptz,
    status          text NOT NULL DEFAULT 'not_started' CHECK (status IN
        ('not_started', 'in_progress', 'completed', 'waiting_on_others', 'deferred')),
    percent_complete integer NOT NULL DEFAULT 0 CHECK (percent_complete BETWEEN 0 AND 100),
    importance      text NOT NULL DEFAULT 'normal' CHECK (importance IN ('low', 'normal', 'high')),
    reminder_at     timestamptz,
    categories      text[] NOT NULL DEFAULT '{}' CHECK (crm.categories_ok(categories)),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1
);
CREATE INDEX tasks_owner_idx ON crm.tasks (owner_id);

-- Sharing: further users (besides the owner) whose mailboxes hold a copy of a record.
CREATE TABLE crm.record_users (
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    record_id       uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES crm.users (id) ON DELETE CASCADE,
    PRIMARY KEY (entity, record_id, user_id)
);
CREATE INDEX record_users_user_idx ON crm.record_users (user_id, entity);

CREATE TABLE crm.change_log (
    seq             bigserial PRIMARY KEY,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    record_id       uuid NOT NULL,
    owner_id        uuid,
    -- insert/update/delete of a record; link/unlink: the record appears for / disappears from
    -- the one user named in user_ids.
    op              text NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'link', 'unlink')),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    user_ids        uuid[] NOT NULL,  -- every mailbox holding the record at that moment
    origin_user_id  uuid,             -- set when the sync service wrote it for that mailbox
    -- The writing transaction. Positions handed to readers are transaction ids, not seq: a seq
    -- is drawn before commit, so a later seq can commit while an earlier one is still in flight
    -- (and a transaction with an older xid can even draw a later seq). Every transaction whose
    -- xid is below the xmin of a snapshot has ended, so "xid < xmin" rows are final.
    xid             xid8 NOT NULL DEFAULT pg_current_xact_id()
);
-- "Changes of user U since position P": the planner takes the xid range when P is recent and
-- the GIN index on user_ids when it is old (200,000 rows, 1,000 users: 0.4 ms and 3.4 ms), so
-- no per-user side table is needed.
CREATE INDEX change_log_xid_idx ON crm.change_log (xid);
CREATE INDEX change_log_users_idx ON crm.change_log USING gin (user_ids);

-- The mailbox user the current transaction writes for (NULL: not the sync service).
CREATE FUNCTION crm.sync_origin() RETURNS uuid
LANGUAGE sql STABLE
RETURN nullif(current_setting('crm.sync_origin', true), '')::uuid;

CREATE FUNCTION crm.record_user_ids(p_entity text, p_record uuid, p_owner uuid) RETURNS uuid[]
LANGUAGE sql STABLE
RETURN array(
    SELECT p_owner
    UNION
    SELECT user_id FROM crm.record_users WHERE entity = p_entity AND record_id = p_record
);

CREATE FUNCTION crm.log_change(
    p_entity text, p_record uuid, p_owner uuid, p_op text, p_users uuid[]
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO crm.change_log (entity, record_id, owner_id, op, user_ids, origin_user_id)
    VALUES (p_entity, p_record, p_owner, p_op, p_users, crm.sync_origin());
    -- Identical payloads are folded into one notification per transaction: keep it tiny.
    PERFORM pg_notify('crm_changes', p_entity);
END
$$;

-- The log position up to which everything is final: the oldest transaction still running (or
-- the next one to start). No row with a smaller xid can appear any more, committed or not.
-- Snapshots span the whole cluster; transactions known to run in another database cannot write
-- this log and are left out, so that a long transaction elsewhere does not hold delivery back.
-- The other databases' transactions are listed first and the snapshot is taken after (a new
-- statement takes a new snapshot under read committed): whatever runs at snapshot time and
-- began before the listing is in it; anything newer counts, which only errs on the safe side.
-- The snapshot is newer than the caller's: read the log in a later statement, never in the
-- same one, and not inside a repeatable read transaction.
CREATE FUNCTION crm.safe_position() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_elsewhere bigint[];
    v_position bigint;
BEGIN
    SELECT coalesce(array_agg(a.backend_xid::text::bigint), '{}') INTO v_elsewhere
    FROM pg_stat_activity AS a
    WHERE a.backend_xid IS NOT NULL
      AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database());
    SELECT least(
        pg_snapshot_xmax(snap.s)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x
         WHERE (x::text::bigint & 4294967295) <> ALL (v_elsewhere))
    ) INTO v_position
    FROM (SELECT pg_current_snapshot() AS s) AS snap;
    RETURN v_position;
END
$$;

-- Every record write bumps its version and its timestamp.
CREATE FUNCTION crm.bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- TG_ARGV[0]: the entity name of the table.
CREATE FUNCTION crm.capture_record() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entity text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM crm.log_change(v_entity, OLD.id, OLD.owner_id, 'delete',
                               crm.record_user_ids(v_entity, OLD.id, OLD.owner_id));
        -- The links die with the record (their own trigger stays silent: the record is gone).
        DELETE FROM crm.record_users WHERE entity = v_entity AND record_id = OLD.id;
        RETURN OLD;
    END IF;
    PERFORM crm.log_change(v_entity, NEW.id, NEW.owner_id, lower(TG_OP),
                           crm.record_user_ids(v_entity, NEW.id, NEW.owner_id));
    -- A new owner takes the record over: the previous owner's mailbox must drop it, unless a
    -- link keeps it there.
    IF TG_OP = 'UPDATE' AND NEW.owner_id <> OLD.owner_id
       AND NOT OLD.owner_id = ANY (crm.record_user_ids(v_entity, NEW.id, NEW.owner_id)) THEN
        PERFORM crm.log_change(v_entity, NEW.id, NEW.owner_id, 'unlink', ARRAY[OLD.owner_id]);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER contacts_version BEFORE UPDATE ON crm.contacts
    FOR EACH ROW EXECUTE FUNCTION crm.bump_version();
CREATE TRIGGER appointments_version BEFORE UPDATE ON crm.appointments
    FOR EACH ROW EXECUTE FUNCTION crm.bump_version();
CREATE TRIGGER tasks_version BEFORE UPDATE ON crm.tasks
    FOR EACH ROW EXECUTE FUNCTION crm.bump_version();

CREATE TRIGGER contacts_capture AFTER INSERT OR UPDATE OR DELETE ON crm.contacts
    FOR EACH ROW EXECUTE FUNCTION crm.capture_record('contact');
CREATE TRIGGER appointments_capture AFTER INSERT OR UPDATE OR DELETE ON crm.appointments
    FOR EACH ROW EXECUTE FUNCTION crm.capture_record('appointment');
CREATE TRIGGER tasks_capture AFTER INSERT OR UPDATE OR DELETE ON crm.tasks
    FOR EACH ROW EXECUTE FUNCTION crm.capture_record('task');

-- An attendee change is a change of its appointment: touch the appointment row, whose own
-- triggers bump the version and log an update. Once per statement, and not again for an
-- appointment this transaction already wrote (its version and log row are already there).
-- After a cascade from a deleted appointment the row is gone and nothing is logged.
CREATE FUNCTION crm.capture_attendees() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE crm.appointments SET updated_at = now()
        WHERE id IN (SELECT appointment_id FROM new_rows)
          AND xmin <> pg_current_xact_id()::xid;
    ELSE
        UPDATE crm.appointments SET updated_at = now()
        WHERE id IN (SELECT appointment_id FROM old_rows)
          AND xmin <> pg_current_xact_id()::xid;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER attendees_insert AFTER INSERT ON crm.appointment_attendees
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.capture_attendees();
CREATE TRIGGER attendees_update AFTER UPDATE ON crm.appointment_attendees
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.capture_attendees();
CREATE TRIGGER attendees_delete AFTER DELETE ON crm.appointment_attendees
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.capture_attendees();

CREATE FUNCTION crm.record_owner(p_entity text, p_record uuid) RETURNS uuid
LANGUAGE sql STABLE
RETURN CASE p_entity
    WHEN 'contact' THEN (SELECT owner_id FROM crm.contacts WHERE id = p_record)
    WHEN 'appointment' THEN (SELECT owner_id FROM crm.appointments WHERE id = p_record)
    WHEN 'task' THEN (SELECT owner_id FROM crm.tasks WHERE id = p_record)
END;

-- A link makes the record appear in that one user's mailbox; removing it makes it disappear
-- from that mailbox only. A link must name an existing record (no foreign key can span the
-- three tables); links removed together with their record log nothing more.
CREATE FUNCTION crm.capture_link() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_owner uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_owner := crm.record_owner(NEW.entity, NEW.record_id);
        IF v_owner IS NULL THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('no %s with id %s', NEW.entity, NEW.record_id),
                COLUMN = 'record_id', TABLE = 'record_users', SCHEMA = 'crm';
        END IF;
        IF v_owner <> NEW.user_id THEN
            PERFORM crm.log_change(NEW.entity, NEW.record_id, v_owner, 'link',
                                   ARRAY[NEW.user_id]);
        END IF;
        RETURN NEW;
    END IF;
    v_owner := crm.record_owner(OLD.entity, OLD.record_id);
    IF v_owner IS NOT NULL AND v_owner <> OLD.user_id THEN
        PERFORM crm.log_change(OLD.entity, OLD.record_id, v_owner, 'unlink', ARRAY[OLD.user_id]);
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER record_users_capture AFTER INSERT OR DELETE ON crm.record_users
    FOR EACH ROW EXECUTE FUNCTION crm.capture_link();
