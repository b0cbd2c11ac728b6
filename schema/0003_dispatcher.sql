-- The dispatcher's own state: who leads, where the CRM change feed stands, what the schedules
-- have already handed out. One row per deployment (the leader writes it) and one per server.

CREATE TABLE sync.dispatcher (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- Change-log position below which every CRM change has been turned into jobs; NULL until a
    -- leader first starts (it then begins at the change log's current position).
    crm_cursor      bigint,
    leader          text,
    leader_since    timestamptz,
    heartbeat_at    timestamptz,
    last_retention_at timestamptz
);
INSERT INTO sync.dispatcher DEFAULT VALUES;

CREATE TABLE sync.server_schedules (
    server_id       bigint PRIMARY KEY REFERENCES sync.servers (id) ON DELETE CASCADE,
    -- Complete-pass slots at or before this instant have been enqueued.
    complete_through timestamptz NOT NULL
);
