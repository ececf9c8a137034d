-- Every message carries its session's job number, activity and deadline as of the message, and
-- a session's are the newer of its row's and its last message's (SQLite's migration 8 says
-- why). This store still writes the session's row with every message; the columns keep one
-- schema and one set of queries for both databases. Rows written before this carry 0.
--
-- Older processes read only the row: this waits until none runs.
-- parley:exclusive
ALTER TABLE messages ADD COLUMN session_job_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN session_active_at bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN session_expires_at bigint NOT NULL DEFAULT 0;
