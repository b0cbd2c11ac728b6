-- Shared (firm) records (issue 16): who holds a record shared with several users.
--
-- A record's holders are its owner and the users linked to it (crm.record_users). An owner
-- who deletes their copy of a record others still hold, under SYNC_SHARED_OWNER_DELETE=keep,
-- stays its owner in the CRM but no longer holds it: crm.owner_drops says so, and the change
-- log stops naming that owner (their mailbox is never given the record again until an
-- operator links them back, which removes the row). Links remember when they were made, so
-- that `transfer` hands the record to the user linked first.

ALTER TABLE crm.record_users ADD COLUMN linked_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE crm.owner_drops (
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    record_id       uuid NOT NULL,
    -- The owner who dropped their copy: a later owner (a transfer) holds the record again.
    owner_id        uuid NOT NULL REFERENCES crm.users (id) ON DELETE CASCADE,
    dropped_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, record_id)
);

-- The holders of a record: its owner, unless that owner dropped it, and its linked users.
CREATE OR REPLACE FUNCTION crm.record_user_ids(p_entity text, p_record uuid, p_owner uuid)
RETURNS uuid[]
LANGUAGE sql STABLE
RETURN array(
    SELECT p_owner WHERE NOT EXISTS (
        SELECT 1 FROM crm.owner_drops AS d
        WHERE d.entity = p_entity AND d.record_id = p_record AND d.owner_id = p_owner
    )
    UNION
    SELECT user_id FROM crm.record_users WHERE entity = p_entity AND record_id = p_record
);

-- An owner's drop makes the record leave that owner's mailbox; its removal (the owner linked
-- again) makes it come back. Nothing is logged once the record or its ownership is gone.
CREATE FUNCTION crm.capture_owner_drop() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_row crm.owner_drops;
BEGIN
    v_row := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
    IF crm.record_owner(v_row.entity, v_row.record_id) IS DISTINCT FROM v_row.owner_id THEN
        RETURN NULL;
    END IF;
    PERFORM crm.log_change(v_row.entity, v_row.record_id, v_row.owner_id,
                           CASE WHEN TG_OP = 'INSERT' THEN 'unlink' ELSE 'link' END,
                           ARRAY[v_row.owner_id]);
    RETURN NULL;
END
$$;

CREATE TRIGGER owner_drops_capture AFTER INSERT OR DELETE ON crm.owner_drops
    FOR EACH ROW EXECUTE FUNCTION crm.capture_owner_drop();

-- A drop lives as long as its record and its owner's ownership.
CREATE FUNCTION crm.forget_owner_drop() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.owner_id <> OLD.owner_id THEN
        DELETE FROM crm.owner_drops WHERE entity = TG_ARGV[0] AND record_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER contacts_owner_drop AFTER UPDATE OF owner_id OR DELETE ON crm.contacts
    FOR EACH ROW EXECUTE FUNCTION crm.forget_owner_drop('contact');
CREATE TRIGGER appointments_owner_drop AFTER UPDATE OF owner_id OR DELETE ON crm.appointments
    FOR EACH ROW EXECUTE FUNCTION crm.forget_owner_drop('appointment');
CREATE TRIGGER tasks_owner_drop AFTER UPDATE OF owner_id OR DELETE ON crm.tasks
    FOR EACH ROW EXECUTE FUNCTION crm.forget_owner_drop('task');

-- Ownership handed to a linked user (SYNC_SHARED_OWNER_DELETE=transfer): their link becomes
-- the ownership. The record triggers log the update for every holder and the former owner's
-- removal (crm.capture_record); the link's removal logs nothing (its user owns the record).
CREATE FUNCTION crm.transfer_record(p_entity text, p_record uuid, p_to uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CASE p_entity
        WHEN 'contact' THEN UPDATE crm.contacts SET owner_id = p_to WHERE id = p_record;
        WHEN 'appointment' THEN UPDATE crm.appointments SET owner_id = p_to WHERE id = p_record;
        WHEN 'task' THEN UPDATE crm.tasks SET owner_id = p_to WHERE id = p_record;
    END CASE;
    DELETE FROM crm.record_users
    WHERE entity = p_entity AND record_id = p_record AND user_id = p_to;
END
$$;
