-- Each probe's stable `id` (probes.yaml `id:`, its name by default) is kept
-- with what Lookout remembers of it, so a probe renamed or moved while
-- Lookout was stopped takes its state, incident, interval and heartbeat
-- memory along at the next start, as it does on a reload.

-- The id the state was last written under (NULL never stays: rows written
-- before this migration get the name, which was then their id).
ALTER TABLE probe_states ADD COLUMN probe_id TEXT;
UPDATE probe_states SET probe_id = probe;

-- Heartbeat memory belongs to the probe's id, not to its name: a rename,
-- by reload or while stopped, keeps the deadline. Rows written before this
-- migration were keyed by name, which was then the id.
ALTER TABLE heartbeats RENAME COLUMN probe TO probe_id;
