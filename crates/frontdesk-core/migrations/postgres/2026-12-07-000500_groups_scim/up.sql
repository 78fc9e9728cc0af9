-- Groups of an organization's members. A group may carry an organization
-- role: its members hold at least that role. A directory (SCIM) may own a
-- group; its id there is external_id.
CREATE TABLE groups (
    id BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    role TEXT CHECK (role IN ('owner', 'admin', 'member')),
    external_id TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- Bearer tokens a directory uses on /scim/v2; each names its organization.
-- Only the SHA-256 of a token is kept.
CREATE TABLE scim_tokens (
    id BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX scim_tokens_org ON scim_tokens (organization_id, id);

-- The directory's latest requests and their outcome, for the directory-sync
-- page (trimmed to the newest few hundred per organization).
CREATE TABLE scim_requests (
    id BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    token_id BIGINT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX scim_requests_org ON scim_requests (organization_id, id);

-- What the directory says of a member: its userName and id there, the
-- email addresses it sent (JSON; the primary one is the user's email) and
-- its `active` flag (null: never sent).
ALTER TABLE memberships ADD COLUMN scim_user_name TEXT;
ALTER TABLE memberships ADD COLUMN external_id TEXT;
ALTER TABLE memberships ADD COLUMN scim_emails TEXT;
ALTER TABLE memberships ADD COLUMN scim_active BOOLEAN;
-- userName is unique in an organization whatever its case, and looked up so.
CREATE UNIQUE INDEX memberships_scim_user_name ON memberships (organization_id, lower(scim_user_name));
CREATE INDEX memberships_external_id ON memberships (organization_id, external_id);

-- What a directory's DELETE /Users/{id} does: 'membership' (leave the
-- organization) or 'user' (delete the account).
ALTER TABLE organizations ADD COLUMN scim_delete TEXT NOT NULL DEFAULT 'membership'
    CHECK (scim_delete IN ('membership', 'user'));
