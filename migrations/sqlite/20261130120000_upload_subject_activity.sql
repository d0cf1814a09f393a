-- Upload sessions: the account that opened each one (open sessions are capped per repository
-- and per subject) and when it last received a chunk (idle sessions are purged).
ALTER TABLE uploads ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN active_at INTEGER NOT NULL DEFAULT 0;
