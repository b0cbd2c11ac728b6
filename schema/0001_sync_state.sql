-- The service's own state: sync targets, mailboxes, links, watermarks, the job queue, runs.
-- Secrets are never stored here: a server names the environment variable or file holding it.

CREATE SCHEMA IF NOT EXISTS sync;

CREATE TABLE sync.servers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    backend         text NOT NULL CHECK (backend IN ('ews', 'graph')),
    url             text NOT NULL,
    auth_kind       text NOT NULL CHECK (auth_kind IN ('basic', 'ntlm', 'oauth')),
    username        text,
    tenant          text,
    client_id       text,
    authority       text,
    -- Where the secret comes from: the name of an environment variable or a file path.
    secret_env      text,
    secret_file     text,
    ca_file         text,
    time_zone       text NOT NULL DEFAULT 'UTC',
    express_interval interval NOT NULL DEFAULT '15 minutes',
    complete_at     time NOT NULL DEFAULT '02:00',
    max_concurrency integer NOT NULL DEFAULT 50 CHECK (max_concurrency > 0),
    rate_per_second double precision NOT NULL DEFAULT 100 CHECK (rate_per_second > 0),
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync.mailboxes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    crm_user_id     text NOT NULL UNIQUE,
    email           text NOT NULL UNIQUE,
    server_id       bigint NOT NULL REFERENCES sync.servers (id),
    server_group    text,
    contacts_mode   text NOT NULL DEFAULT 'two-way'
        CHECK (contacts_mode IN ('two-way', 'crm-to-exchange', 'exchange-to-crm', 'off')),
    calendar_mode   text NOT NULL DEFAULT 'two-way'
        CHECK (calendar_mode IN ('two-way', 'crm-to-exchange', 'exchange-to-crm', 'off')),
    tasks_mode      text NOT NULL DEFAULT 'two-way'
        CHECK (tasks_mode IN ('two-way', 'crm-to-exchange', 'exchange-to-crm', 'off')),
    state           text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'disabled', 'quarantined', 'needs_recovery')),
    state_reason    text,
    failure_count   integer NOT NULL DEFAULT 0,
    last_error      text,
    -- Last-synchronization marker, mirrored hidden in the mailbox.
    marker_generation bigint NOT NULL DEFAULT 0,
    marker_at       timestamptz,
    initial_done    boolean NOT NULL DEFAULT false,
    last_express_at timestamptz,
    last_complete_at timestamptz,
    last_push_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailboxes_server_idx ON sync.mailboxes (server_id, server_group);
CREATE INDEX mailboxes_state_idx ON sync.mailboxes (state);

CREATE TABLE sync.folder_links (
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    folder_id       text,           -- NULL: the distinguished folder of the entity
    sync_state      text,           -- EWS SyncState or Graph delta link
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, entity)
);

-- The status database of the 3-way sync: what was last synced, per side.
CREATE TABLE sync.item_links (
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    crm_id          text NOT NULL,
    exchange_id     text NOT NULL,
    change_key      text NOT NULL DEFAULT '',
    crm_hash        text NOT NULL,
    exchange_hash   text NOT NULL,
    synced_fields   jsonb NOT NULL,
    -- A create committed as intended before it is made ('crm' or 'exchange'; '' = confirmed),
    -- and the hash an in-flight update is writing: a crash between intent and confirmation is
    -- then told apart from a user's deletion or edit.
    pending         text NOT NULL DEFAULT '' CHECK (pending IN ('', 'crm', 'exchange')),
    intent_hash     text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, entity, crm_id)
);
-- An intended Exchange create has no item id yet ('').
CREATE UNIQUE INDEX item_links_exchange_idx ON sync.item_links (mailbox_id, entity, exchange_id)
    WHERE exchange_id <> '';

CREATE TABLE sync.crm_watermarks (
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    entity          text NOT NULL CHECK (entity IN ('contact', 'appointment', 'task')),
    last_seq        bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, entity)
);

CREATE TABLE sync.jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('express', 'complete', 'initial', 'recover')),
    dry_run         boolean NOT NULL DEFAULT false,
    forced          boolean NOT NULL DEFAULT false,
    priority        smallint NOT NULL DEFAULT 0,  -- higher first; operator requests are 10
    -- A request that arrived while the job ran: the job is queued again with this kind when the
    -- running pass ends, so nothing requested during a pass is lost.
    rerun_kind      text CHECK (rerun_kind IN ('express', 'complete', 'initial', 'recover')),
    source          text NOT NULL DEFAULT 'schedule',
    status          text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    run_after       timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_expires_at timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    -- Oldest change this job covers, for the change-to-sync lag metric.
    oldest_change_at timestamptz,
    finished_at     timestamptz,
    outcome         text
);
-- At most one unfinished job per mailbox: new requests coalesce into it.
CREATE UNIQUE INDEX jobs_one_open_per_mailbox ON sync.jobs (mailbox_id)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_claim_idx ON sync.jobs (priority DESC, run_after) WHERE status = 'queued';
CREATE INDEX jobs_lease_idx ON sync.jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_finished_idx ON sync.jobs (finished_at) WHERE status IN ('done', 'failed');

CREATE TABLE sync.runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    job_id          bigint,
    kind            text NOT NULL,
    dry_run         boolean NOT NULL DEFAULT false,
    engine          text,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    outcome         text CHECK (outcome IN ('ok', 'failed', 'guarded', 'transient', 'skipped')),
    -- {entity: {direction: {operation: n}}}
    counts          jsonb NOT NULL DEFAULT '{}',
    requests        integer NOT NULL DEFAULT 0,
    throttled       integer NOT NULL DEFAULT 0,
    error           text,
    plan            text
);
CREATE INDEX runs_mailbox_idx ON sync.runs (mailbox_id, started_at DESC);
CREATE INDEX runs_started_idx ON sync.runs (started_at);

CREATE TABLE sync.item_errors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id      bigint NOT NULL REFERENCES sync.mailboxes (id) ON DELETE CASCADE,
    entity          text NOT NULL,
    crm_id          text,
    exchange_id     text,
    direction       text NOT NULL,
    reason          text NOT NULL,
    -- The content hash that failed: the item is retried once its content changes.
    content_hash    text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX item_errors_mailbox_idx ON sync.item_errors (mailbox_id, created_at DESC);
CREATE INDEX item_errors_created_idx ON sync.item_errors (created_at);

CREATE TABLE sync.engines (
    name            text PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    roles           text NOT NULL DEFAULT ''
);

-- Strength of a pass kind when requests coalesce: a stronger pass covers a weaker one.
CREATE FUNCTION sync.job_kind_rank(kind text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind WHEN 'express' THEN 1 WHEN 'complete' THEN 2 WHEN 'initial' THEN 3
                     WHEN 'recover' THEN 4 ELSE 0 END
$$;
