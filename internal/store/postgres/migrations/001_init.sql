-- parley schema, PostgreSQL dialect. Times are Unix milliseconds (bigint) to match SQLite and
-- keep one code path; JSON is text (never jsonb: outbox bodies are the exact bytes signed, and
-- contexts are only ever read whole).

CREATE TABLE integrations (
    id                uuid PRIMARY KEY,
    name              text NOT NULL DEFAULT '',
    webhook_url       text NOT NULL,
    webhook_secret    text NOT NULL DEFAULT '',
    allowed_ips       text NOT NULL DEFAULT '[]',
    subscribed_events text NOT NULL DEFAULT '[]',
    session_timeout   integer NOT NULL,
    desk_id           text NOT NULL,
    brain             text NOT NULL DEFAULT '{}',
    delivery          text NOT NULL DEFAULT '{}',
    rate_limit        integer NOT NULL DEFAULT 0,
    created_at        bigint NOT NULL,
    updated_at        bigint NOT NULL
);

CREATE TABLE api_keys (
    id             uuid PRIMARY KEY,
    integration_id uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    hash           bytea NOT NULL UNIQUE,
    prefix         text NOT NULL,
    created_at     bigint NOT NULL
);
CREATE INDEX api_keys_integration ON api_keys (integration_id);

CREATE TABLE sessions (
    id                  uuid PRIMARY KEY,
    integration_id      uuid NOT NULL REFERENCES integrations (id),
    external_session_id text NOT NULL DEFAULT '',
    status              text NOT NULL,
    context             text NOT NULL,
    conversation_id     uuid NOT NULL,
    partition           integer NOT NULL,
    event_seq           bigint NOT NULL DEFAULT 0,
    job_seq             bigint NOT NULL DEFAULT 0,
    created_at          bigint NOT NULL,
    last_activity_at    bigint NOT NULL,
    expires_at          bigint NOT NULL,
    ended_at            bigint NOT NULL DEFAULT 0
);
CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE status = 'active';

CREATE TABLE conversations (
    id             uuid PRIMARY KEY,
    session_id     uuid NOT NULL REFERENCES sessions (id),
    integration_id uuid NOT NULL,
    status         text NOT NULL,
    handled_by     text NOT NULL,
    assignee_id    text NOT NULL DEFAULT '',
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL,
    resolved_at    bigint NOT NULL DEFAULT 0
);
CREATE INDEX conversations_session ON conversations (session_id);
CREATE INDEX conversations_open ON conversations (handled_by, updated_at) WHERE status = 'open';

CREATE TABLE messages (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid NOT NULL UNIQUE,
    session_id      uuid NOT NULL,
    conversation_id uuid NOT NULL,
    author          text NOT NULL,
    agent           text NOT NULL DEFAULT '',
    text            text NOT NULL DEFAULT '',
    attachments     text NOT NULL DEFAULT '',
    responses       text NOT NULL DEFAULT '',
    created_at      bigint NOT NULL,
    delivered_at    bigint NOT NULL DEFAULT 0,
    read_at         bigint NOT NULL DEFAULT 0
);
CREATE INDEX messages_session ON messages (session_id, seq);

CREATE TABLE outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid NOT NULL UNIQUE,
    integration_id  uuid NOT NULL,
    session_id      uuid NOT NULL,
    session_seq     bigint NOT NULL,
    partition       integer NOT NULL,
    event_type      text NOT NULL,
    body            bytea NOT NULL,
    state           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    attempt_log     text NOT NULL DEFAULT '[]',
    created_at      bigint NOT NULL,
    finished_at     bigint NOT NULL DEFAULT 0
);
-- Partial indexes: pending and failed rows are few at any time, delivered ones are most. The
-- pending index serves both a session's queue and the scan of a partition's sessions.
CREATE INDEX outbox_pending ON outbox (session_id, session_seq, partition) WHERE state = 'pending';
CREATE INDEX outbox_failed ON outbox (integration_id, seq) WHERE state = 'failed';

CREATE TABLE brain_jobs (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  uuid NOT NULL,
    session_id      uuid NOT NULL,
    session_seq     bigint NOT NULL,
    partition       integer NOT NULL,
    conversation_id uuid NOT NULL,
    message_id      uuid NOT NULL,
    created_at      bigint NOT NULL
);
CREATE INDEX brain_jobs_session ON brain_jobs (session_id, session_seq, partition);

CREATE TABLE idempotency_keys (
    integration_id uuid NOT NULL,
    idem_key       text NOT NULL,
    status         integer NOT NULL,
    response       bytea NOT NULL,
    created_at     bigint NOT NULL,
    PRIMARY KEY (integration_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE nodes (
    id           text PRIMARY KEY,
    started_at   bigint NOT NULL,
    heartbeat_at bigint NOT NULL
);
CREATE TABLE partitions (
    id          integer PRIMARY KEY,
    owner       text NOT NULL DEFAULT '',
    lease_until bigint NOT NULL DEFAULT 0
);
INSERT INTO partitions (id) SELECT generate_series(0, 63);
