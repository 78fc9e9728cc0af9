-- Account status as admins read it: a user is "pending" until they first act
-- themselves (sign in, or set their own password); `activated_at` records when.
-- Stored status stays active/suspended; pending = active with no activated_at.
ALTER TABLE users ADD COLUMN activated_at TIMESTAMP;
UPDATE users SET activated_at = COALESCE(last_login_at, created_at)
    WHERE last_login_at IS NOT NULL OR password_hash IS NOT NULL;
CREATE INDEX users_pending_created_at ON users (created_at, id)
    WHERE status = 'active' AND activated_at IS NULL;
-- Consent to the host's terms given at sign-up: which version, and when.
ALTER TABLE users ADD COLUMN terms_version TEXT;
ALTER TABLE users ADD COLUMN terms_accepted_at TIMESTAMP;

-- Email verification links: only the token's SHA-256 is kept; a newer link
-- marks the older ones used.
CREATE TABLE email_verifications (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, created_at);

-- Public sign-up requests, counted per email and per IP for the rate limits.
CREATE TABLE signup_requests (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL,
    ip TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX signup_requests_email ON signup_requests (email, created_at);
CREATE INDEX signup_requests_ip ON signup_requests (ip, created_at);
