-- Second factors. A TOTP factor keeps its secret sealed (ChaCha20-Poly1305
-- under a key derived from the host's secret_key, bound to the user's id) and
-- the last time step it accepted, so a code is accepted once. A factor counts
-- only once confirmed (confirmed_at set).
CREATE TABLE mfa_factors (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    secret TEXT,
    last_step BIGINT,
    confirmed_at TIMESTAMP,
    last_used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

-- Recovery codes: only their SHA-256 kept; each used once.
CREATE TABLE mfa_recovery_codes (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX mfa_recovery_codes_user_code ON mfa_recovery_codes (user_id, code_hash);

-- The step between the password and the second factor: a short-lived,
-- single-use token (only its digest kept); no session exists before it is used.
CREATE TABLE mfa_challenges (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    failures INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
