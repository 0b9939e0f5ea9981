-- The ledger's leaves (DESIGN section 5): one row per stored event, in application-sequence
-- order, with a dense leaf index (notification ids can have gaps, so they are not used as
-- indexes). Hashes are lowercase hex so the DDL is the same on SQLite and PostgreSQL.
CREATE TABLE ledger_entries (
    leaf_index      BIGINT PRIMARY KEY,
    notification_id BIGINT NOT NULL UNIQUE,
    aggregate_id    TEXT NOT NULL,
    version         INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    leaf_hash       TEXT NOT NULL,
    chain_hash      TEXT NOT NULL,
    UNIQUE (aggregate_id, version)
);

CREATE INDEX ledger_entries_tenant ON ledger_entries (tenant_id);

-- Signed checkpoints (C2SP tlog-checkpoint bodies in signed-note form).
CREATE TABLE ledger_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  TEXT NOT NULL,
    note       TEXT NOT NULL,
    signed_at  TEXT NOT NULL
);
