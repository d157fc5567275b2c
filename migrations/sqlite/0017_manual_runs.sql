-- The operators' console, part A (issue 16): "Run now" and response-time
-- percentiles.
-- A run an operator started outside the schedule ("Run now"); it counts
-- for alerting like any run, and listings show it as `"trigger": "manual"`.
ALTER TABLE runs ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
-- Each hour's journey durations as a histogram of fixed, log-spaced
-- buckets (`latency::upper_ms`): a JSON object `{"<bucket>": <count>}`,
-- added to in the hourly upsert, so p50/p95 per hour come from the rollup
-- and never from raw runs. NULL for hours stored before this migration.
ALTER TABLE hourly ADD COLUMN latency TEXT;
