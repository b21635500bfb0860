-- Pruning what accounts leave behind: login failures older than the throttle window and refresh tokens
-- past their expiry are deleted by range, so both need an index on their time column.

CREATE INDEX login_failures_at ON login_failures (failed_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
