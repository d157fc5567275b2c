-- The operators' console (issue 16).
-- Every probe's hourly rollup by hour: failure counts when the monitor
-- starts and `/api/admin/errors` (the primary key starts with the probe,
-- so without this index that read walked the whole rollup).
CREATE INDEX hourly_by_hour ON hourly (hour);
-- Failed runs by start, for the grouped failure reasons of
-- `/api/admin/errors`: only failed runs are indexed, so the read skips the
-- passing ones and writes of passing runs cost nothing more.
CREATE INDEX runs_failed_by_start ON runs (started_at) WHERE outcome IN ('fail', 'error');
