-- Bots: a tenant role below member, for users and for the keys that act for them; a bot's key is bound to
-- its user id (it acts for that user only, whatever X-User-Id says).
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('customer', 'bot', 'member', 'agent', 'admin'));
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('customer', 'bot', 'member', 'agent', 'admin'));
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS user_id text;
