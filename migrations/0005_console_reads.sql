-- Indexes for the console's reads (issue 13); no table changes.
-- GET /v1/inferences lists a tenant's inferences newest first (by Routed time).
CREATE INDEX agent_metrics_tenant_created ON agent_metrics (tenant_id, created_at);
-- The admin API reads a tenant's tenancy events (keys, agents, caps) from the ledger's own
-- leaves, so its audit trail is exactly what is on the hash chain.
CREATE INDEX ledger_entries_tenant_type ON ledger_entries (tenant_id, event_type);
