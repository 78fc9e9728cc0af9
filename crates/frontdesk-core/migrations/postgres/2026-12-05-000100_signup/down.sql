DROP TABLE signup_requests;
DROP TABLE email_verifications;
ALTER TABLE users DROP COLUMN terms_accepted_at;
ALTER TABLE users DROP COLUMN terms_version;
DROP INDEX users_pending_created_at;
ALTER TABLE users DROP COLUMN activated_at;
