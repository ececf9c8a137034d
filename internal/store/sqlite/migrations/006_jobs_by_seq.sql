-- Waiting brain jobs are indexed in the order they were made, not by session. Keyed by session,
-- every user message put an entry on a page of its own, scattered over the index: with the brain
-- behind (a slow model, a brain worker stopped) the index grows with every message, and writing
-- those pages was a quarter of the writer's time per message (BenchmarkPostUserMessage, 49 → 36
-- µs of CPU). In the order of seq, new entries share the last page, and answered ones leave from
-- pages near it.
--
-- A session's waiting jobs are found through messages_session, from the oldest waiting job's
-- seq on (PendingJobs); the partitions' sessions with jobs by a scan of this index, as before.
-- Older processes' queries run unchanged on this index, only slower: no need to wait for them.
DROP INDEX messages_jobs;
CREATE INDEX messages_jobs ON messages (seq) WHERE job_seq > 0;
