-- Waiting brain jobs are indexed in the order they were made, not by session, as on SQLite
-- (whose migration 6 says why: keyed by session, every user message dirtied a page of its own
-- while the brain was behind). A session's waiting jobs are found through messages_session,
-- from the oldest waiting job's seq on (PendingJobs). Older processes' queries run unchanged on
-- the new index.
--
-- The new index is built before the old one is dropped: while it builds (it reads the whole
-- table, about 0.1 s per million messages, measured), writes to messages wait and reads go on;
-- only the DROP at the end, just before the commit, holds up reads too.
CREATE INDEX messages_jobs_by_seq ON messages (seq) WHERE job_seq > 0;
DROP INDEX messages_jobs;
ALTER INDEX messages_jobs_by_seq RENAME TO messages_jobs;
