-- Real-time delivery: the relay's checkpoint, tenant webhooks.

CREATE TABLE relay_checkpoints (
    name     text PRIMARY KEY,
    position bigint NOT NULL
);

CREATE TABLE webhooks (
    webhook_id text PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id),
    url        text NOT NULL,
    secret     text NOT NULL,
    events     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id) WHERE deleted_at IS NULL;
