-- The groups an invitation puts its invitee into when they accept (a group
-- deleted meanwhile simply drops out).
CREATE TABLE invitation_groups (
    invitation_id BIGINT NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (invitation_id, group_id)
);
CREATE INDEX invitation_groups_group ON invitation_groups (group_id);
