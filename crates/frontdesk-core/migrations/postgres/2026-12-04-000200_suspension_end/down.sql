DROP INDEX users_suspended_until;
ALTER TABLE users DROP COLUMN suspended_until;
