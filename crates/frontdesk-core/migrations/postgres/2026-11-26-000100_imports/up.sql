-- Imports from the admin pages and the API: small files run at once and are
-- recorded when done; large ones are queued and run in the background,
-- writing their progress after every batch.
CREATE TABLE imports (
    id BIGSERIAL PRIMARY KEY,
    actor TEXT NOT NULL,
    actor_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    organization_id BIGINT REFERENCES organizations (id) ON DELETE SET NULL,
    file_name TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('dry_run', 'apply', 'strict')),
    options TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    background BOOLEAN NOT NULL DEFAULT FALSE,
    checking BOOLEAN NOT NULL DEFAULT FALSE,
    total_rows BIGINT NOT NULL DEFAULT 0,
    rows_done BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    applied BOOLEAN NOT NULL DEFAULT FALSE,
    report TEXT,
    error TEXT,
    upload_key TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX imports_created ON imports (created_at);
CREATE INDEX imports_organization ON imports (organization_id);
CREATE INDEX imports_status ON imports (status);

-- Invitations sent by an import to the users it created: accepting one sets
-- the password of that (still password-less) account instead of asking the
-- invitee to sign in first.
CREATE TABLE import_invitations (
    invitation_id BIGINT PRIMARY KEY NOT NULL REFERENCES invitations (id) ON DELETE CASCADE
);
