-- A suspension may end by itself: the user is restored once this time has
-- passed (at their next sign-in, or by the background sweep).
ALTER TABLE users ADD COLUMN suspended_until TIMESTAMP;
CREATE INDEX users_suspended_until ON users (suspended_until) WHERE suspended_until IS NOT NULL;
