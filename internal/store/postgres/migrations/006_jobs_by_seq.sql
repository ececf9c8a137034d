-- Waiting brain jobs are indexed in the order they were made, not by session, as on SQLite
-- (whose migration 6 says why: keyed by session, every user message dirtied a page of its own
-- while the brain was behind). A session's waiting jobs are found through messages_session,
-- from the oldest waiting job's seq on (PendingJobs). Older processes' queries run unchanged on
-- this index, only slower: no need to wait for them.
DROP INDEX messages_jobs;
CREATE INDEX messages_jobs ON messages (seq) WHERE job_seq > 0;
