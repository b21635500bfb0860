-- Accounts, sessions, key roles, per-tenant limits. Identity data lives in tables, not in the log:
-- password hashes and tokens must be erasable and never travel to projections or NATS.

ALTER TABLE tenants ADD COLUMN rate_limit integer CHECK (rate_limit >= 0);        -- NULL: the default
ALTER TABLE tenants ADD COLUMN send_rate_limit integer CHECK (send_rate_limit >= 0);

ALTER TABLE api_keys ADD COLUMN key_id text;
UPDATE api_keys SET key_id = 'key_' || substr(md5(random()::text || key_hash::text), 1, 20);
ALTER TABLE api_keys ALTER COLUMN key_id SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_key_id UNIQUE (key_id);
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';
-- A key is a tenant's trusted backend; its role bounds what the X-User-Id it acts for may do.
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('member', 'agent', 'admin'));

CREATE TABLE users (
    tenant_id    text NOT NULL REFERENCES tenants (tenant_id),
    user_id      text NOT NULL,
    email        text,
    phone        text,
    display_name text NOT NULL,
    avatar_url   text,
    timezone     text,
    role         text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'agent', 'admin')),
    password_hash text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE UNIQUE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL;

-- One row per refresh token; a family is one login session. Only hashes are stored.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id  text NOT NULL,
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE sessions (
    family_id  text PRIMARY KEY,
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE login_failures (
    key       text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_key ON login_failures (key, failed_at);

-- Shared rate-limit windows; UNLOGGED: losing a second's counts in a crash is harmless.
CREATE UNLOGGED TABLE rate_windows (
    key          text PRIMARY KEY,
    window_start bigint NOT NULL,
    used         integer NOT NULL
);

-- A generated JWT signing secret, used when ROOMLOG_JWT_KEYS is not configured.
CREATE TABLE instance_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
