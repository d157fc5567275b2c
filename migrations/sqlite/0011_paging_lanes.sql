-- Issue 13: pages are claimed before subscriber mail and digests, lane by
-- lane (one notifier at a time): the worker looks for due rows of a kind.
CREATE INDEX outbox_pending_by_kind ON outbox (status, kind, next_attempt_at);
-- ...and mail lane by lane, however many mails wait in a busy lane.
CREATE INDEX outbox_pending_by_lane ON outbox (status, notifier, next_attempt_at);
