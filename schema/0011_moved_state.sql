-- A mailbox Exchange moved to another server has a state of its own, 'moved', instead of
-- 'disabled': it is not a failure (no alert on disabled mailboxes, no failure count), no
-- schedule picks it, and its reason names the command that carries it to its new server
-- (`sync-service mailboxes move`). The pass that found the move ends as 'moved', not
-- 'failed', so that a planned migration of many mailboxes does not read as failing passes.
--
-- 'negotiate': Windows authentication with SPNEGO (Kerberos, or NTLM inside SPNEGO where
-- Kerberos cannot be used), beside plain 'ntlm'.
ALTER TABLE sync.mailboxes DROP CONSTRAINT mailboxes_state_check;
ALTER TABLE sync.mailboxes ADD CONSTRAINT mailboxes_state_check
    CHECK (state IN ('active', 'disabled', 'quarantined', 'needs_recovery', 'moved'));

ALTER TABLE sync.runs DROP CONSTRAINT runs_outcome_check;
ALTER TABLE sync.runs ADD CONSTRAINT runs_outcome_check CHECK (outcome IN
    ('ok', 'failed', 'guarded', 'transient', 'skipped', 'cancelled', 'timed_out', 'lost', 'moved'));

ALTER TABLE sync.servers DROP CONSTRAINT servers_auth_kind_check;
ALTER TABLE sync.servers ADD CONSTRAINT servers_auth_kind_check
    CHECK (auth_kind IN ('basic', 'ntlm', 'negotiate', 'oauth'));
