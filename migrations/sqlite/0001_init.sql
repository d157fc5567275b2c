-- Lookout's storage. Times are Unix milliseconds (UTC) in INTEGER columns.

-- One row per journey run; `outcome` is NULL while the run is in flight.
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    run_uid       TEXT    NOT NULL UNIQUE,
    probe         TEXT    NOT NULL,
    component     TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    duration_ms   INTEGER,
    outcome       TEXT,
    leaked        INTEGER NOT NULL DEFAULT 0,
    failed_step   TEXT,
    reason        TEXT
);
CREATE INDEX runs_by_probe ON runs (probe, started_at);

-- One row per executed (or skipped) step of a run, cleanup steps included.
CREATE TABLE steps (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    step_id       TEXT    NOT NULL,
    phase         TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    status        INTEGER,
    outcome       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    error         TEXT,
    failures      TEXT    NOT NULL DEFAULT '[]',
    captures      TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX steps_by_run ON steps (run_id, seq);

-- Current alerting state of each probe (the evaluator's memory).
CREATE TABLE probe_states (
    probe                 TEXT    PRIMARY KEY,
    component             TEXT    NOT NULL,
    failing               INTEGER NOT NULL DEFAULT 0,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    consecutive_passes    INTEGER NOT NULL DEFAULT 0,
    since                 INTEGER NOT NULL,
    last_run_at           INTEGER,
    last_outcome          TEXT,
    last_reason           TEXT,
    last_failed_step      TEXT
);

-- Incidents, one per component outage. `policy` is a JSON snapshot of the
-- escalation policy the incident started with, so a reload cannot change it.
CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY,
    component        TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    impact           TEXT    NOT NULL,
    opened_at        INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    acknowledged_by  TEXT,
    resolved_at      INTEGER,
    policy           TEXT,
    esc_epoch        INTEGER NOT NULL,
    esc_level        INTEGER,
    last_page_at     INTEGER,
    pages            INTEGER NOT NULL DEFAULT 0,
    -- Bumped on every change; writers that decided on an older version lose.
    version          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_open ON incidents (resolved_at, component);

-- Probes taking part in an incident; `recovered_at` set when one recovers.
CREATE TABLE incident_probes (
    incident_id   INTEGER NOT NULL REFERENCES incidents (id),
    probe         TEXT    NOT NULL,
    joined_at     INTEGER NOT NULL,
    recovered_at  INTEGER,
    PRIMARY KEY (incident_id, probe)
);

-- The incident timeline. `public` entries appear on the status page;
-- the others (which step failed, pages sent, acks) only to operators.
CREATE TABLE incident_updates (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    public       INTEGER NOT NULL
);
CREATE INDEX incident_updates_by_incident ON incident_updates (incident_id, at);

-- Every notification is a row here before it is a request.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    delivery_id      TEXT    NOT NULL UNIQUE,
    incident_id      INTEGER,
    notifier         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL DEFAULT 'pending',
    last_error       TEXT,
    delivered_at     INTEGER,
    claimed_until    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_incident ON outbox (incident_id, notifier, id);

-- Small key/value facts the service keeps across restarts (e.g. the ack-link key).
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
