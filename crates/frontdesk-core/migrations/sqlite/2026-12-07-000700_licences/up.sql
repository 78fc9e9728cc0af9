-- The host's licence types, declared in the builder and synced here at each
-- start (a type no longer declared is removed; its assignments stay, unseen,
-- until it is declared again). `seats`: the most users of one organization
-- who may hold it; null for no limit.
CREATE TABLE licence_types (
    key TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    seats BIGINT CHECK (seats >= 0),
    updated_at TIMESTAMP NOT NULL
);

-- A licence given to a member of an organization directly. It goes with the
-- membership.
CREATE TABLE user_licences (
    organization_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    licence TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (organization_id, licence, user_id),
    FOREIGN KEY (user_id, organization_id) REFERENCES memberships (user_id, organization_id) ON DELETE CASCADE
);
CREATE INDEX user_licences_user ON user_licences (user_id, organization_id);

-- A licence a group carries: each of its members holds it.
CREATE TABLE group_licences (
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    licence TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, licence)
);
