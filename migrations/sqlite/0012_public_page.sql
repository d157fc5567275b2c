-- Every change to a subscription (a new address, a re-subscribe after
-- unsubscribing, other components) waits here until the address itself
-- confirms it through the link mailed to it: an anonymous form post
-- changes nothing by itself.
CREATE TABLE subscription_requests (
    token          TEXT    PRIMARY KEY,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers (id),
    components     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER
);
CREATE INDEX subscription_requests_by_subscriber ON subscription_requests (subscriber_id);
-- Confirmation links already mailed name the subscriber's own token.
INSERT INTO subscription_requests (token, subscriber_id, components, created_at)
    SELECT token, id, components, created_at FROM subscribers
    WHERE confirmed_at IS NULL AND unsubscribed_at IS NULL;

-- When each public thing (component, maintenance window from probes.yaml)
-- first appeared, for the Statuspage `created_at`.
CREATE TABLE first_seen (
    kind  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    at    INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);

-- An incident probes open while its component is in a maintenance window
-- is withheld from the public (the maintenance is what the public sees):
-- `published_at` stays NULL until the window ends with the incident still
-- open. Incidents made before this column were all public.
ALTER TABLE incidents ADD COLUMN published_at INTEGER;
UPDATE incidents SET published_at = opened_at;
