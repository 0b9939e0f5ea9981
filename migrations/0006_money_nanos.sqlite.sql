-- Read-model money as whole nano-dollars (1e-9 USD) in BIGINT columns, so dashboards can
-- SUM(...) exactly in SQL (DESIGN section 4); the API still answers decimal strings. Replaces
-- the decimal TEXT columns of 0002, converting the existing rows exactly: spend is rounded up
-- to the nano-dollar and caps down, the projector's rule (domain.money), which only matters
-- for an amount finer than a nano-dollar.
--
-- SQLite has no exact decimal type (CAST AS REAL would round), so the text is converted by
-- its digits: whole dollars times 10^9, plus the first nine fraction digits (right-padded),
-- plus one when any digit beyond the ninth is not zero and the amount rounds up. The columns
-- only ever held plain non-negative decimals ("0.001200", "7.50", "0", at worst "-0"; no
-- exponent): domain.money.usd_str wrote them. Anything else (a hand edit) fails the migration
-- rather than become a wrong number. The scratch table `_nanos` holds each distinct text once.

CREATE TEMP TABLE _nanos (txt TEXT PRIMARY KEY, whole TEXT, frac TEXT);
INSERT OR IGNORE INTO _nanos (txt) SELECT cost_usd FROM routing_outcomes WHERE cost_usd IS NOT NULL;
INSERT OR IGNORE INTO _nanos (txt) SELECT cost_usd FROM usage_daily;
INSERT OR IGNORE INTO _nanos (txt) SELECT cost_usd FROM agent_metrics WHERE cost_usd IS NOT NULL;
INSERT OR IGNORE INTO _nanos (txt) SELECT daily_cap_usd FROM agents WHERE daily_cap_usd IS NOT NULL;
UPDATE _nanos SET
    whole = CASE WHEN instr(txt, '.') > 0 THEN substr(txt, 1, instr(txt, '.') - 1) ELSE txt END,
    frac = CASE WHEN instr(txt, '.') > 0 THEN substr(txt, instr(txt, '.') + 1) ELSE '' END;
-- A negative zero is zero.
UPDATE _nanos SET whole = substr(whole, 2) WHERE whole GLOB '-*' AND txt NOT GLOB '*[1-9]*';

CREATE TEMP TABLE _refused (txt TEXT);
CREATE TEMP TRIGGER _refuse BEFORE INSERT ON _refused BEGIN
    SELECT RAISE(ABORT, 'a read-model money column holds a value that is not a plain decimal');
END;
INSERT INTO _refused SELECT txt FROM _nanos
    WHERE whole = '' OR whole GLOB '*[^0-9]*' OR frac GLOB '*[^0-9]*'
       OR (instr(txt, '.') > 0 AND frac = '');
DROP TABLE _refused;

ALTER TABLE routing_outcomes ADD COLUMN cost_nano_usd BIGINT;
UPDATE routing_outcomes SET cost_nano_usd = (
    SELECT CAST(whole AS INTEGER) * 1000000000 + CAST(substr(frac || '000000000', 1, 9) AS INTEGER)
           + (rtrim(substr(frac, 10), '0') <> '')
    FROM _nanos WHERE txt = routing_outcomes.cost_usd)
    WHERE cost_usd IS NOT NULL;
ALTER TABLE routing_outcomes DROP COLUMN cost_usd;

ALTER TABLE usage_daily ADD COLUMN cost_nano_usd BIGINT NOT NULL DEFAULT 0;
UPDATE usage_daily SET cost_nano_usd = (
    SELECT CAST(whole AS INTEGER) * 1000000000 + CAST(substr(frac || '000000000', 1, 9) AS INTEGER)
           + (rtrim(substr(frac, 10), '0') <> '')
    FROM _nanos WHERE txt = usage_daily.cost_usd);
ALTER TABLE usage_daily DROP COLUMN cost_usd;

ALTER TABLE agent_metrics ADD COLUMN cost_nano_usd BIGINT;
UPDATE agent_metrics SET cost_nano_usd = (
    SELECT CAST(whole AS INTEGER) * 1000000000 + CAST(substr(frac || '000000000', 1, 9) AS INTEGER)
           + (rtrim(substr(frac, 10), '0') <> '')
    FROM _nanos WHERE txt = agent_metrics.cost_usd)
    WHERE cost_usd IS NOT NULL;
ALTER TABLE agent_metrics DROP COLUMN cost_usd;

-- Caps round down: digits beyond the ninth are dropped.
ALTER TABLE agents ADD COLUMN daily_cap_nano_usd BIGINT;
UPDATE agents SET daily_cap_nano_usd = (
    SELECT CAST(whole AS INTEGER) * 1000000000 + CAST(substr(frac || '000000000', 1, 9) AS INTEGER)
    FROM _nanos WHERE txt = agents.daily_cap_usd)
    WHERE daily_cap_usd IS NOT NULL;
ALTER TABLE agents DROP COLUMN daily_cap_usd;

DROP TABLE _nanos;
