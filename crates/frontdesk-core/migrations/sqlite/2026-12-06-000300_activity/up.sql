-- What signed-in users did in the host app: page views recorded by the
-- activity middleware (route pattern, method, status) and features the host
-- records by name. Written in batches by one background writer per process;
-- rows older than the retention are deleted by the same writer.
CREATE TABLE activity_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    service TEXT,
    route TEXT,
    method TEXT,
    status INTEGER,
    details TEXT NOT NULL DEFAULT '{}',
    ip TEXT
);
-- One user's timeline, newest first, paged by (at, id).
CREATE INDEX activity_events_user_at ON activity_events (user_id, at DESC, id DESC);
-- Retention: the oldest rows first.
CREATE INDEX activity_events_at ON activity_events (at);
