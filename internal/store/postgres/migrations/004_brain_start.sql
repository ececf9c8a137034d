-- Whether a brain job's message opened its conversation, so the dialog engine can greet (its
-- "start" trigger) without reading the conversation's history.
ALTER TABLE brain_jobs ADD COLUMN conversation_start INTEGER NOT NULL DEFAULT 0;
