-- Captures a run's cleanup needs, written while the run is in flight, so
-- that a run cut short by a crash can still be cleaned up at the next start.
ALTER TABLE runs ADD COLUMN pending_captures TEXT;

-- Where the step's last request spent its time, as JSON:
-- {dns_ms, connect_ms, ttfb_ms, total_ms} (absent phases are null).
ALTER TABLE steps ADD COLUMN timings TEXT;
