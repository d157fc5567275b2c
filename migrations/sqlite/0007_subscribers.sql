-- Visitors subscribed by email to incident and maintenance updates.
-- `components` is a JSON array (empty = all); `token` is the secret in their
-- confirmation and unsubscribe links.
CREATE TABLE subscribers (
    id               INTEGER PRIMARY KEY,
    email            TEXT    NOT NULL,
    components       TEXT    NOT NULL,
    token            TEXT    NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    confirmed_at     INTEGER,
    unsubscribed_at  INTEGER
);
CREATE UNIQUE INDEX subscribers_by_email ON subscribers (email);
