-- Starts the scheduler skipped rather than queue (previous run still in
-- flight, no room under `limits:`, Lookout fell behind), tallied per probe
-- and reason about once a second. Pruned with the raw runs.
CREATE TABLE skipped_starts (
    id        INTEGER PRIMARY KEY,
    probe     TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL
);
CREATE INDEX skipped_starts_by_last ON skipped_starts (last_at);
