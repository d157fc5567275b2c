-- Retention prunes raw runs by age in small batches.
CREATE INDEX runs_by_start ON runs (started_at);
