-- A tenant's events in log order: exports read them by tenant position without scanning other tenants.
CREATE INDEX events_tenant_position ON events (tenant_id, position);
