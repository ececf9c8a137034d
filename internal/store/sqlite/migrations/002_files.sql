-- Files uploaded to sessions (SPEC §2, Files). The bytes live in the blob store (a directory or
-- an S3 bucket) under the file's id; this row is the file's state and the only place its
-- filename and content type are kept.

CREATE TABLE files (
    id             TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL,
    session_id     TEXT NOT NULL REFERENCES sessions (id),
    filename       TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size           INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    uploaded_at    INTEGER NOT NULL DEFAULT 0,
    referenced_at  INTEGER NOT NULL DEFAULT 0
);
-- The retention sweep reads only files no message names, oldest first; referenced files are
-- most of the table and are never swept.
CREATE INDEX files_unreferenced ON files (created_at) WHERE referenced_at = 0;

-- Keys parley generates once per deployment and every process shares, such as the key that
-- signs its own upload and download URLs. Kept in the database so that a URL signed by one
-- process is valid on every other and across restarts, with nothing to configure.
CREATE TABLE signing_keys (
    name       TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
