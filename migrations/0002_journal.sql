-- Captures a run's cleanup needs, written while the run is in flight, so
-- that a run cut short by a crash can still be cleaned up at the next start.
ALTER TABLE runs ADD COLUMN pending_captures TEXT;

-- Time to first byte of the step's last request (the rest of the breakdown
-- the HTTP stack does not expose per request).
ALTER TABLE steps ADD COLUMN ttfb_ms INTEGER;
