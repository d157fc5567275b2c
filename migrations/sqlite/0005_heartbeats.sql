-- Heartbeat probes: what Lookout remembers of each job's pings, so that a
-- restart neither forgets when a job last pinged nor reports a missed
-- period twice. Written only by the heartbeat watcher.
CREATE TABLE heartbeats (
    probe             TEXT    PRIMARY KEY,
    -- When Lookout first watched it: the deadline anchor until a ping.
    watching_since    INTEGER NOT NULL,
    -- The last finish the job reported (success or failure).
    last_ping_at      INTEGER,
    last_start_at     INTEGER,
    -- The expected ping time up to which lateness has been reported.
    late_through      INTEGER,
    -- Whether the current start's overrun has been reported.
    overrun_reported  INTEGER NOT NULL DEFAULT 0
);
