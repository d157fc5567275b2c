-- Paging cycles, as migrations/sqlite/0021_paging_cycle.sql: 0 when an
-- incident opens, one more each time paging starts over (an expired
-- acknowledgement, a rearm); PagerDuty gets a `dedup_key` per cycle.
ALTER TABLE incidents ADD COLUMN esc_cycle BIGINT NOT NULL DEFAULT 0;
