-- The audit trail's rows cost the initial sync less (benchmarks/RESULTS.md, "Audit trail
-- cost"): every write inserts one, with an entry in each index and, before this, a foreign-key
-- check against sync.mailboxes.
--
-- (at, id) is the primary key: it orders the whole trail's pages and serves retention, so the
-- separate index on id goes. An Exchange item id is ~150 characters: it is looked up by
-- equality only, which a hash index serves with a 4-byte entry instead of the whole id. No
-- foreign key: a row's mailbox is the pass's own, and mailboxes are never deleted (were one,
-- its rows would no longer be listed, since the reads join sync.mailboxes, and retention would
-- remove them).
ALTER TABLE sync.audit DROP CONSTRAINT audit_mailbox_id_fkey;
ALTER TABLE sync.audit DROP CONSTRAINT audit_pkey;
DROP INDEX sync.audit_at_idx;
ALTER TABLE sync.audit ADD CONSTRAINT audit_pkey PRIMARY KEY (at, id);
DROP INDEX sync.audit_exchange_idx;
CREATE INDEX audit_exchange_idx ON sync.audit USING hash (exchange_id) WHERE exchange_id <> '';
