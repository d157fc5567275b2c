-- Issue 14: webhook subscriptions, as Statuspage offers them to machines.
-- A subscription is an endpoint (https, public address) and a contact
-- email; it delivers nothing until the email confirms it (so Lookout is
-- never an anonymous POST cannon), and after long failure it is disabled
-- and the contact is mailed. `components` is a JSON array (empty = all);
-- `token` is the secret of its manage/unsubscribe link. A pending change
-- (new, re-subscribe, other components) waits in `request_*` until the
-- contact confirms it.
CREATE TABLE webhook_subscriptions (
    id                  INTEGER PRIMARY KEY,
    endpoint            TEXT    NOT NULL,
    email               TEXT    NOT NULL,
    components          TEXT    NOT NULL,
    token               TEXT    NOT NULL UNIQUE,
    created_at          INTEGER NOT NULL,
    confirmed_at        INTEGER,
    unsubscribed_at     INTEGER,
    disabled_at         INTEGER,
    disabled_reason     TEXT,
    request_token       TEXT    UNIQUE,
    request_components  TEXT,
    requested_at        INTEGER
);
CREATE UNIQUE INDEX webhook_subscriptions_by_endpoint ON webhook_subscriptions (endpoint, email);
