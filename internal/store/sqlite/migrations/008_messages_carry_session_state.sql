-- Every message carries its session's job number, activity and deadline as of the message, and
-- a session's are the newer of its row's and its last message's. A user's message then need
-- not rewrite its session's row (UpdateSessionWithMessage), which was a fifth of the writer's
-- CPU per message. Rows written before this carry 0, which the row's values always exceed.
--
-- Older processes read only the row, which may now lag behind: this waits until none runs.
-- parley:exclusive
ALTER TABLE messages ADD COLUMN session_job_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN session_active_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN session_expires_at INTEGER NOT NULL DEFAULT 0;
