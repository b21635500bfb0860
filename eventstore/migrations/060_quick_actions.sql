-- Integrator quick actions of a tenant's support desk: where to call and the signing secret. Like webhooks
-- (004), this is configuration holding a secret, kept out of the log, its exports and JetStream; every
-- execution of an action is an event on the session it acted on.

CREATE TABLE quick_actions (
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    action_id        text NOT NULL,
    name             text NOT NULL,
    description      text NOT NULL,
    required_context text[] NOT NULL,
    permissions      text[] NOT NULL,
    url              text NOT NULL,
    secret           text NOT NULL,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    PRIMARY KEY (tenant_id, action_id)
);
