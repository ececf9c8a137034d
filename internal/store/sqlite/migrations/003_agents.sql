-- Human agents of the console (SPEC §4): who they are, their API tokens and their console
-- logins. Tokens and login cookies are stored only as SHA-256 hashes; passwords as argon2id.

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    avatar        TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    -- The integrations the agent may work in, a JSON array of IDs; [] = all.
    integrations  TEXT NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE agent_tokens (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

CREATE TABLE agent_logins (
    hash       BLOB PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX agent_logins_expires ON agent_logins (expires_at);
