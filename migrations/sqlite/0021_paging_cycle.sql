-- Paging cycles: 0 when an incident opens, one more each time paging starts
-- over (an expired acknowledgement, a rearm). Receivers that fold pages into
-- one alert per key (PagerDuty's `dedup_key`) get a key per cycle, so the
-- page after an expired ack is a new alert, not a trigger swallowed by the
-- acknowledged one; the resolve closes the key of every cycle.
ALTER TABLE incidents ADD COLUMN esc_cycle INTEGER NOT NULL DEFAULT 0;
