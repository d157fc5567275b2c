-- Rollups for the uptime page and the badges, so that no page ever reads
-- raw runs (which may be pruned): both tables hold all the history needs.

-- How long each probe (state: its run outcome, pass|degraded|fail|error)
-- and each component (state: the Statuspage component status) spent in each
-- state. The monitor opens a row when the state changes and closes the
-- previous one (`ended_at`); `ended_at` is NULL for the current state.
-- `last_seen_at` is the latest run that confirmed the state: when runs stop
-- for longer than the schedule allows (the service was down), the interval
-- is closed at `last_seen_at` and the silence shows as "no data".
CREATE TABLE state_intervals (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('probe', 'component')),
    subject       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX state_intervals_by_end ON state_intervals (kind, subject, ended_at);
CREATE UNIQUE INDEX state_intervals_current ON state_intervals (kind, subject)
    WHERE ended_at IS NULL;

-- Per probe and UTC hour (start of the hour, ms): how many runs ended in
-- each outcome, and the duration of the journeys that completed (pass or
-- degraded: a failed journey's duration says when it stopped, not how fast
-- the platform answered). Upserted in the same transaction as each run.
CREATE TABLE hourly (
    probe            TEXT    NOT NULL,
    hour             INTEGER NOT NULL,
    component        TEXT    NOT NULL,
    runs             INTEGER NOT NULL,
    passes           INTEGER NOT NULL,
    degraded         INTEGER NOT NULL,
    fails            INTEGER NOT NULL,
    errors           INTEGER NOT NULL,
    duration_sum_ms  INTEGER NOT NULL,
    duration_min_ms  INTEGER,
    duration_max_ms  INTEGER,
    PRIMARY KEY (probe, hour)
) WITHOUT ROWID;
CREATE INDEX hourly_by_component ON hourly (component, hour);
