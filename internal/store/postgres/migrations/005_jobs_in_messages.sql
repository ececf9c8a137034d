-- A brain job is its user message's row, no longer a row of its own: a message that waits for
-- the brain carries the session's number for the job (job_seq) until the job is answered or
-- dropped, when job_seq returns to 0. One insert per user message instead of two, and the
-- partial index holds only what waits. Measured: a quarter of the writer's work per message
-- was the brain_jobs row and its index.
--
-- Older processes insert into brain_jobs, which this drops: it waits until none runs.
-- parley:exclusive
ALTER TABLE messages ADD COLUMN job_seq bigint NOT NULL DEFAULT 0;
-- Whether the message opened its conversation (the dialog engine greets).
ALTER TABLE messages ADD COLUMN job_start integer NOT NULL DEFAULT 0;
UPDATE messages SET job_seq = j.session_seq, job_start = j.conversation_start
    FROM brain_jobs j WHERE j.message_id = messages.id;
CREATE INDEX messages_jobs ON messages (session_id, job_seq) WHERE job_seq > 0;
DROP TABLE brain_jobs;
