-- The operators' console, part A (issue 16), as
-- migrations/sqlite/0017_manual_runs.sql: "Run now" and response-time
-- percentiles.
ALTER TABLE runs ADD COLUMN manual BIGINT NOT NULL DEFAULT 0;
-- Each hour's journey durations as a histogram, a JSON object
-- `{"<bucket>": <count>}` kept as text like every JSON column here.
ALTER TABLE hourly ADD COLUMN latency TEXT;
-- Two histograms added key by key (the hourly upsert's merge; SQLite does
-- the same with json_each and json_group_object). NULL or JSON null counts
-- as empty; the result is NULL only when both are.
CREATE FUNCTION latency_merge(a TEXT, b TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN (a IS NULL OR a = 'null') AND (b IS NULL OR b = 'null') THEN NULL
        ELSE (SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)::text FROM (
                SELECT key, sum(value::bigint) AS total FROM (
                    SELECT key, value FROM jsonb_each_text(coalesce(nullif(a, 'null'), '{}')::jsonb)
                    UNION ALL
                    SELECT key, value FROM jsonb_each_text(coalesce(nullif(b, 'null'), '{}')::jsonb)
                ) AS both_sides GROUP BY key
            ) AS merged)
    END
    $$;
