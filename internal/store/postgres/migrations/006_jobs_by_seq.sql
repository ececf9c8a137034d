-- Waiting brain jobs are indexed in the order they were made, not by session, as on SQLite
-- (whose migration 6 says why: keyed by session, every user message dirtied a page of its own
-- while the brain was behind). A session's waiting jobs are found through messages_session,
-- from the oldest waiting job's seq on (PendingJobs). Older processes' queries run unchanged on
-- the new index.
--
-- The DROP comes first on purpose: it takes messages' strongest lock at once, so while the new
-- index builds (it reads the whole table, about 0.1 s per million messages, measured) older
-- processes' reads and writes of messages wait, and then go on. Building first would let their
-- reads through, but a transaction of theirs that read messages and then waited to write it
-- would deadlock with the DROP at the end, and PostgreSQL would abort the migration (measured).
DROP INDEX messages_jobs;
CREATE INDEX messages_jobs ON messages (seq) WHERE job_seq > 0;
