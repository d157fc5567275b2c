-- Issue 12: typed failures and redirect chains.
-- runs.failure_kind / steps.kind: dns, connect, tls, timeout, body_limit,
-- redirect_limit, protocol, interrupted, assertion, prober (NULL: no failure).
-- steps.hops: JSON array of {method, url (secrets masked), status}, one per
-- request of the last attempt, redirects included.
ALTER TABLE runs ADD COLUMN failure_kind TEXT;
ALTER TABLE steps ADD COLUMN kind TEXT;
ALTER TABLE steps ADD COLUMN hops TEXT;
