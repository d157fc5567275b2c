-- Probing from several places (issue 18).
-- Where each run ran: an agent's location id, or `local` (the server).
ALTER TABLE runs ADD COLUMN location TEXT NOT NULL DEFAULT 'local';
-- Each probe's per-location memory for the quorum rule, a JSON object
-- keyed by location id (`quorum::LocationState`); '{}' for probes that run
-- only on the server.
ALTER TABLE probe_states ADD COLUMN locations TEXT NOT NULL DEFAULT '{}';
-- Agents' tokens, only as SHA-256 hashes (hex) of 32 random bytes; a
-- revoked token keeps its row (`revoked_at`) so its use is refused by name.
CREATE TABLE agent_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    location    TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    last_seen_at INTEGER
);
-- An agent's spool (`lookout agent --spool FILE`, a database of its own):
-- runs not yet delivered to the server, oldest first; `run` is the run as
-- JSON (`journey::RunResult`). Empty in a server's database.
CREATE TABLE agent_spool (
    id   INTEGER PRIMARY KEY,
    run  TEXT    NOT NULL
);
