-- The log: streams (one row per stream, the append lock) and events (immutable, never updated).
CREATE TABLE streams (
    stream_id text PRIMARY KEY,
    tenant_id text NOT NULL,
    last_seq  bigint NOT NULL DEFAULT 0
);

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       text NOT NULL,
    seq             bigint NOT NULL,
    tenant_id       text NOT NULL,
    type            text NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: global-log readers use it to never skip a late commit.
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, seq)
);

CREATE UNIQUE INDEX events_idempotency_key ON events (stream_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Which version of each projection the live read-model tables were built with.
CREATE TABLE projection_versions (
    name       text PRIMARY KEY,
    version    integer NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now()
);

-- Tenants and their API keys (only a SHA-256 of each key is stored; keys are 256-bit random).
CREATE TABLE tenants (
    tenant_id  text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_hash   bytea PRIMARY KEY,
    prefix     text NOT NULL,
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
