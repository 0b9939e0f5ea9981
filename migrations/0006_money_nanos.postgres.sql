-- Read-model money as whole nano-dollars (1e-9 USD) in BIGINT columns, so dashboards can
-- SUM(...) exactly in SQL (DESIGN section 4); the API still answers decimal strings. Replaces
-- the decimal TEXT columns of 0002, converting the existing rows exactly: spend is rounded up
-- to the nano-dollar and caps down, the projector's rule (domain.money), which only matters
-- for an amount finer than a nano-dollar. NUMERIC makes the arithmetic exact here; a value
-- that is not a decimal (a hand edit) fails the migration and names itself.

ALTER TABLE routing_outcomes ADD COLUMN cost_nano_usd BIGINT;
UPDATE routing_outcomes SET cost_nano_usd = CEIL(cost_usd::numeric * 1000000000)::bigint
    WHERE cost_usd IS NOT NULL;
ALTER TABLE routing_outcomes DROP COLUMN cost_usd;

ALTER TABLE usage_daily ADD COLUMN cost_nano_usd BIGINT NOT NULL DEFAULT 0;
UPDATE usage_daily SET cost_nano_usd = CEIL(cost_usd::numeric * 1000000000)::bigint;
ALTER TABLE usage_daily DROP COLUMN cost_usd;

ALTER TABLE agent_metrics ADD COLUMN cost_nano_usd BIGINT;
UPDATE agent_metrics SET cost_nano_usd = CEIL(cost_usd::numeric * 1000000000)::bigint
    WHERE cost_usd IS NOT NULL;
ALTER TABLE agent_metrics DROP COLUMN cost_usd;

ALTER TABLE agents ADD COLUMN daily_cap_nano_usd BIGINT;
UPDATE agents SET daily_cap_nano_usd = FLOOR(daily_cap_usd::numeric * 1000000000)::bigint
    WHERE daily_cap_usd IS NOT NULL;
ALTER TABLE agents DROP COLUMN daily_cap_usd;
