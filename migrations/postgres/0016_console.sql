-- The operators' console (issue 16), as migrations/sqlite/0016_console.sql.
-- Every probe's hourly rollup by hour: failure counts when the monitor
-- starts and `/api/admin/errors`.
CREATE INDEX hourly_by_hour ON hourly (hour);
-- Failed runs by start, for the grouped failure reasons of
-- `/api/admin/errors`: only failed runs are indexed.
CREATE INDEX runs_failed_by_start ON runs (started_at) WHERE outcome IN ('fail', 'error');
