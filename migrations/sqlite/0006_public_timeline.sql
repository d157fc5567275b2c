-- The public side of incidents: components an operator declared affected
-- (with the state shown for each), a postmortem, and whether the incident
-- was opened by hand.
CREATE TABLE incident_components (
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    component    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    PRIMARY KEY (incident_id, component)
);

ALTER TABLE incidents ADD COLUMN postmortem TEXT;
ALTER TABLE incidents ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
-- Which components each public update said were affected (JSON map).
ALTER TABLE incident_updates ADD COLUMN affected TEXT;
