-- Passkeys (WebAuthn credentials) are second factors too: a row of
-- mfa_factors with kind 'passkey', its credential id (base64url, unique across
-- users), the user handle the authenticator keeps, and the credential itself
-- (public key, counter; nothing secret) as JSON.
ALTER TABLE mfa_factors ADD COLUMN credential_id TEXT;
ALTER TABLE mfa_factors ADD COLUMN user_handle TEXT;
ALTER TABLE mfa_factors ADD COLUMN credential TEXT;
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors (credential_id);

-- A WebAuthn ceremony in progress (register, second step, passkey sign-in):
-- the server-side state, named by a single-use token (only its digest kept),
-- alive for a few minutes.
CREATE TABLE passkey_ceremonies (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- How a sign-in attempt proved who it was: password, totp, recovery_code,
-- passkey (empty for rows written before it was kept).
ALTER TABLE login_attempts ADD COLUMN method TEXT;
