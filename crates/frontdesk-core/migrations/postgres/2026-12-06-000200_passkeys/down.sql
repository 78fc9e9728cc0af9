ALTER TABLE login_attempts DROP COLUMN method;
DROP TABLE passkey_ceremonies;
DROP INDEX mfa_factors_credential;
ALTER TABLE mfa_factors DROP COLUMN credential;
ALTER TABLE mfa_factors DROP COLUMN user_handle;
ALTER TABLE mfa_factors DROP COLUMN credential_id;
