-- Several instances on one database (issue 17): who is up, who leads,
-- the takeovers, and heartbeat pings taken by a follower for the leader.
-- Times are Unix milliseconds. migrations/postgres/0018_cluster.sql is
-- the same for PostgreSQL.

-- Each instance refreshes its row every few seconds; `last_seen` tells
-- which are up.
CREATE TABLE instances (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    -- `leader` or `follower`
    role          TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    -- when it became the leader (NULL: a follower)
    leader_since  INTEGER
);

-- Every time an instance became the leader, and why.
CREATE TABLE takeovers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    instance      TEXT    NOT NULL,
    -- the leader before it, if one was known
    previous      TEXT,
    reason        TEXT    NOT NULL
);

-- Heartbeat pings taken by a follower, handled by the leader's watcher
-- (then deleted) with the time they arrived.
CREATE TABLE relayed_pings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    probe         TEXT    NOT NULL,
    signal        TEXT    NOT NULL,
    at            INTEGER NOT NULL
);
