-- parley schema, SQLite dialect. Times are Unix milliseconds; JSON is stored as TEXT; outbox
-- bodies as BLOB, because they are the exact bytes that are signed.

CREATE TABLE integrations (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL DEFAULT '',
    webhook_url       TEXT NOT NULL,
    webhook_secret    TEXT NOT NULL DEFAULT '',
    allowed_ips       TEXT NOT NULL DEFAULT '[]',
    subscribed_events TEXT NOT NULL DEFAULT '[]',
    session_timeout   INTEGER NOT NULL,
    desk_id           TEXT NOT NULL,
    brain             TEXT NOT NULL DEFAULT '{}',
    delivery          TEXT NOT NULL DEFAULT '{}',
    rate_limit        INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    hash           BLOB NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX api_keys_integration ON api_keys (integration_id);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    integration_id      TEXT NOT NULL REFERENCES integrations (id),
    external_session_id TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    context             TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    partition           INTEGER NOT NULL,
    event_seq           INTEGER NOT NULL DEFAULT 0,
    job_seq             INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    last_activity_at    INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    ended_at            INTEGER NOT NULL DEFAULT 0
);
-- The expiry sweep reads only sessions that are due, so its cost follows the number expiring,
-- not the number stored.
CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE status = 'active';

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions (id),
    integration_id TEXT NOT NULL,
    status         TEXT NOT NULL,
    handled_by     TEXT NOT NULL,
    assignee_id    TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    resolved_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_session ON conversations (session_id);
-- The console lists open conversations by who handles them.
CREATE INDEX conversations_open ON conversations (handled_by, updated_at) WHERE status = 'open';

CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    session_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    author          TEXT NOT NULL,
    agent           TEXT NOT NULL DEFAULT '',
    text            TEXT NOT NULL DEFAULT '',
    attachments     TEXT NOT NULL DEFAULT '',
    responses       TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER NOT NULL DEFAULT 0,
    read_at         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_session ON messages (session_id, seq);

-- The outbox: one row per webhook event, written in the transaction that caused it.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    integration_id  TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    session_seq     INTEGER NOT NULL,
    partition       INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    attempt_log     TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER NOT NULL DEFAULT 0
);
-- Partial indexes: pending and failed rows are few at any time, delivered ones are most. The
-- pending index serves both a session's queue and the scan of a partition's sessions.
CREATE INDEX outbox_pending ON outbox (session_id, session_seq, partition) WHERE state = 'pending';
CREATE INDEX outbox_failed ON outbox (integration_id, seq) WHERE state = 'failed';

-- Brain work: a user message waiting for the brain's reply. Deleted when the reply commits.
CREATE TABLE brain_jobs (
    seq             INTEGER PRIMARY KEY,
    integration_id  TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    session_seq     INTEGER NOT NULL,
    partition       INTEGER NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX brain_jobs_session ON brain_jobs (session_id, session_seq, partition);

CREATE TABLE idempotency_keys (
    integration_id TEXT NOT NULL,
    idem_key       TEXT NOT NULL,
    status         INTEGER NOT NULL,
    response       BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (integration_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Processes sharing the database, and which of them owns each partition of sessions.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE TABLE partitions (
    id          INTEGER PRIMARY KEY,
    owner       TEXT NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0
);
WITH RECURSIVE p (id) AS (SELECT 0 UNION ALL SELECT id + 1 FROM p WHERE id < 63)
INSERT INTO partitions (id) SELECT id FROM p;
