-- The audit trail: one row per write the sync made to a side, inserted by the statement that
-- commits the write's link row (or counts it), so a write and its row commit together.
--
-- `changes` is {field: {"before": value, "after": value}} (values bounded by the service; a
-- create has no before, a delete no field at all). `changed_on` is the side whose change the
-- write carries over ('both' when both sides changed the item); when both changed a field to
-- different values, `policy` is the conflict policy that decided, `winner` the side whose value
-- was kept and `losing` the other side's values of those fields ({field: value}).
CREATE TABLE sync.audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    -- The pass that wrote (sync.runs.id); no reference: runs are purged on their own.
    run_id          bigint,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    crm_id          text NOT NULL,
    exchange_id     text NOT NULL DEFAULT '',
    title           text NOT NULL DEFAULT '',
    side            text NOT NULL CHECK (side IN ('crm', 'exchange')),
    operation       text NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
    changed_on      text NOT NULL CHECK (changed_on IN ('crm', 'exchange', 'both')),
    reason          text NOT NULL DEFAULT '',
    changes         jsonb NOT NULL DEFAULT '{}',
    policy          text,
    winner          text CHECK (winner IN ('crm', 'exchange')),
    losing          jsonb
);
-- A mailbox's trail by time (newest first, keyset on (at, id)); a record's trail by either id;
-- the whole trail by time, which is also what retention deletes by.
CREATE INDEX audit_mailbox_idx ON sync.audit (mailbox_id, at, id);
CREATE INDEX audit_crm_idx ON sync.audit (crm_id);
CREATE INDEX audit_exchange_idx ON sync.audit (exchange_id) WHERE exchange_id <> '';
CREATE INDEX audit_at_idx ON sync.audit (at, id);
