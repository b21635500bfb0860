-- The users of a tenant whose role is not the default, read as one map by the authenticator (service/identity/auth.py)
-- instead of a look-up per user: a probe of these rows only, however many members the tenant has.
CREATE INDEX users_tenant_roles ON users (tenant_id) WHERE role <> 'member';
