-- Human agents of the console (SPEC §4): who they are, their API tokens and their console
-- logins. Tokens and login cookies are stored only as SHA-256 hashes; passwords as argon2id.

CREATE TABLE agents (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text NOT NULL,
    avatar        text NOT NULL DEFAULT '',
    password_hash text NOT NULL DEFAULT '',
    -- The integrations the agent may work in, a JSON array of IDs; [] = all.
    integrations  text NOT NULL DEFAULT '[]',
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);

CREATE TABLE agent_tokens (
    id         uuid PRIMARY KEY,
    agent_id   uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    hash       bytea NOT NULL UNIQUE,
    prefix     text NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

CREATE TABLE agent_logins (
    hash       bytea PRIMARY KEY,
    agent_id   uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX agent_logins_expires ON agent_logins (expires_at);
