-- Read models (DESIGN section 4; table names are a contract) and their tracking positions.
-- One DDL for SQLite and PostgreSQL: only TEXT and integer columns, so rows read back as the
-- same Python values on both (which is how `ainfera verify` diffs a PostgreSQL table against a
-- SQLite replay). Money is a decimal TEXT string, never REAL; timestamps are fixed-width ISO
-- 8601 UTC text ("2025-01-31T23:59:59.123456Z"), so text order is time order; dates are
-- YYYY-MM-DD UTC.

-- One row per projection: the last notification id of the application sequence it applied.
-- Written in the same transaction as the projection's rows.
CREATE TABLE projection_tracking (
    projection       TEXT NOT NULL,
    application_name TEXT NOT NULL,
    notification_id  BIGINT NOT NULL,
    PRIMARY KEY (projection, application_name)
);

-- One row per routed inference (router "ainfera-inference"); passthroughs have none.
CREATE TABLE routing_outcomes (
    inference_id        TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    agent_id            TEXT NOT NULL,
    api                 TEXT NOT NULL,
    requested_model     TEXT NOT NULL,
    alias_hit           TEXT,
    chosen_model        TEXT,
    min_quality         TEXT,
    routing_preference  TEXT,
    ruleset_hash        TEXT NOT NULL,
    outcome_status      TEXT,
    observed_latency_ms BIGINT,
    cost_usd            TEXT,
    created_at          TEXT NOT NULL,
    completed_at        TEXT
);
CREATE INDEX routing_outcomes_tenant_completed ON routing_outcomes (tenant_id, completed_at);

-- Calls per tenant, agent and UTC date (of Routed); fallback counts a subset of ok.
CREATE TABLE usage_daily (
    tenant_id TEXT NOT NULL,
    agent_id  TEXT NOT NULL,
    day       TEXT NOT NULL,
    calls     BIGINT NOT NULL,
    cost_usd  TEXT NOT NULL,
    ok        BIGINT NOT NULL,
    fallback  BIGINT NOT NULL,
    error     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, day)
);

-- usage_daily's own memory of the row each inference counts in.
CREATE TABLE usage_daily_inferences (
    inference_id TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    day          TEXT NOT NULL
);

-- One row per inference (routed and passthrough): the inputs of 24-hour agent metrics.
CREATE TABLE agent_metrics (
    inference_id TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    router       TEXT NOT NULL,
    status       TEXT,
    latency_ms   BIGINT,
    cost_usd     TEXT,
    created_at   TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX agent_metrics_tenant_completed ON agent_metrics (tenant_id, completed_at);

-- Every inference's routing decision; candidates as canonical JSON text.
CREATE TABLE decisions (
    inference_id         TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    agent_id             TEXT NOT NULL,
    api                  TEXT NOT NULL,
    router               TEXT NOT NULL,
    requested_model      TEXT NOT NULL,
    alias_hit            TEXT,
    chosen_model         TEXT,
    policy               TEXT NOT NULL,
    ruleset_hash         TEXT NOT NULL,
    candidates           TEXT NOT NULL,
    dashboard_candidates TEXT NOT NULL,
    created_at           TEXT NOT NULL
);

-- Registered agents and their spend policy; daily_cap_usd NULL means no cap.
CREATE TABLE agents (
    agent_id          TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    daily_cap_usd     TEXT,
    registered_at     TEXT NOT NULL,
    policy_updated_at TEXT NOT NULL
);
CREATE INDEX agents_tenant ON agents (tenant_id);
