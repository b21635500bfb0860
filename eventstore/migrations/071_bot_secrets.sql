-- Bots' webhook signing secrets, kept out of the log like the tenant webhooks' (004) and quick actions' (060):
-- a bot's events name its current secret by an opaque id, and the secret itself is a row here, so it never
-- lands in the log, its exports or JetStream. A new secret is a new row; the old one is deleted once the
-- event naming the new one is appended (and every row of a bot when it is deleted).
CREATE TABLE bot_secrets (
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id),
    secret_id  text NOT NULL,
    bot_id     text NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, secret_id)
);
CREATE INDEX bot_secrets_bot ON bot_secrets (tenant_id, bot_id);

-- Bot events written before this migration carry the plaintext secret: move each into a row here and
-- leave only its id in the event (the rewrite an erasure makes; the bots read model is rebuilt from the
-- rewritten events, its version having changed with this).
INSERT INTO bot_secrets (tenant_id, secret_id, bot_id, secret, created_at)
SELECT e.tenant_id, 'bsec_log' || e.position, e.data->>'bot_id', e.data->>'secret', e.created_at
FROM events e
WHERE e.type IN ('bot.registered', 'bot.updated') AND e.data->>'secret' IS NOT NULL;

UPDATE events e SET data = (e.data - 'secret') || jsonb_build_object('secret_id', 'bsec_log' || e.position)
WHERE e.type IN ('bot.registered', 'bot.updated') AND e.data->>'secret' IS NOT NULL;

UPDATE events e SET data = e.data - 'secret'
WHERE e.type IN ('bot.registered', 'bot.updated') AND e.data ? 'secret';
