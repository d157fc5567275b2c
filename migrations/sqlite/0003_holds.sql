-- Paging holds and inbound acknowledgements.

-- Recent state changes of a probe (JSON array of ms timestamps) and whether
-- it is flapping: a flapping probe's incident waits to page until it settles.
ALTER TABLE probe_states ADD COLUMN flips TEXT NOT NULL DEFAULT '[]';
ALTER TABLE probe_states ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;

-- Why the incident's paging is held right now (maintenance, silence,
-- flapping), so the timeline notes each change of hold once.
ALTER TABLE incidents ADD COLUMN held TEXT;

-- Maintenance windows made through the admin API. `spec` is the window as
-- JSON (one-off or weekly), the same definition probes.yaml uses.
CREATE TABLE maintenances (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    components    TEXT    NOT NULL,
    spec          TEXT    NOT NULL,
    message       TEXT,
    author        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    cancelled_at  INTEGER
);

-- Silences: a probe or a component pages nobody until `until`.
CREATE TABLE silences (
    id          INTEGER PRIMARY KEY,
    probe       TEXT,
    component   TEXT,
    until       INTEGER NOT NULL,
    comment     TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    ended_at    INTEGER
);

-- Ids of signed inbound webhooks already accepted: a replay is refused.
CREATE TABLE inbound_events (
    id           TEXT    PRIMARY KEY,
    source       TEXT    NOT NULL,
    received_at  INTEGER NOT NULL
);
