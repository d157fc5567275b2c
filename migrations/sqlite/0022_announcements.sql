-- Announcements waiting to reach subscribers (mail and webhook
-- subscriptions): written in the same transaction as the public incident
-- update they announce, deleted once its deliveries are in the outbox, so
-- a crash between the two neither loses nor repeats an announcement (the
-- deliveries' ids derive from the row, and the outbox ignores an id it has).
CREATE TABLE announcements (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    -- JSON array of the component ids the update names.
    components  TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
