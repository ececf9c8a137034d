-- Files uploaded to sessions (SPEC §2, Files). The bytes live in the blob store (a directory or
-- an S3 bucket) under the file's id; this row is the file's state and the only place its
-- filename and content type are kept.

CREATE TABLE files (
    id             uuid PRIMARY KEY,
    integration_id uuid NOT NULL,
    session_id     uuid NOT NULL REFERENCES sessions (id),
    filename       text NOT NULL,
    content_type   text NOT NULL,
    size           bigint NOT NULL DEFAULT 0,
    state          text NOT NULL,
    created_at     bigint NOT NULL,
    uploaded_at    bigint NOT NULL DEFAULT 0,
    referenced_at  bigint NOT NULL DEFAULT 0
);
-- The retention sweep reads only files no message names, oldest first; referenced files are
-- most of the table and are never swept.
CREATE INDEX files_unreferenced ON files (created_at) WHERE referenced_at = 0;

-- Keys parley generates once per deployment and every process shares, such as the key that
-- signs its own upload and download URLs. Kept in the database so that a URL signed by one
-- process is valid on every other and across restarts, with nothing to configure.
CREATE TABLE signing_keys (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL,
    created_at bigint NOT NULL
);
