-- Deep pages of a membership or tag filter in sign-up order. Without this, a
-- page such as page 100 of "role admin in any organization" (39k of 1M users)
-- walked the users' sign-up index and probed `memberships` for each entry it
-- passed (about 147k probes, 140 ms). With each member's and tagged user's
-- sign-up time copied beside the set, the page is read from one index of the
-- set, already in sign-up order, without touching `users`.
--
-- The copy is kept by triggers, whoever writes the rows (frontdesk's code, the
-- host's own SQL): set from `users` when a row is inserted without it or
-- changed, and rewritten for every row of a user whose `created_at` changes.
-- The import, which knows its new users' sign-up time, gives it with the
-- rows, so the insert trigger (about 14 µs a row) is not called there. The
-- column stays nullable so that a row naming a user who does not exist still
-- fails on its foreign key, as before.
ALTER TABLE memberships ADD COLUMN user_created_at TIMESTAMP;
ALTER TABLE user_tags ADD COLUMN user_created_at TIMESTAMP;

UPDATE memberships m SET user_created_at = u.created_at FROM users u WHERE u.id = m.user_id;
UPDATE user_tags t SET user_created_at = u.created_at FROM users u WHERE u.id = t.user_id;

-- `SET search_path FROM CURRENT`: the function finds frontdesk's `users`
-- whatever the writing session's path is.
CREATE FUNCTION copy_user_created_at() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    SELECT u.created_at INTO NEW.user_created_at FROM users u WHERE u.id = NEW.user_id;
    RETURN NEW;
END
$$;

CREATE FUNCTION user_created_at_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE memberships SET user_created_at = NEW.created_at WHERE user_id = NEW.id;
    UPDATE user_tags SET user_created_at = NEW.created_at WHERE user_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER memberships_user_created_at
    BEFORE INSERT ON memberships
    FOR EACH ROW WHEN (NEW.user_created_at IS NULL) EXECUTE FUNCTION copy_user_created_at();
CREATE TRIGGER memberships_user_created_at_changed
    BEFORE UPDATE OF user_id, user_created_at ON memberships
    FOR EACH ROW EXECUTE FUNCTION copy_user_created_at();
CREATE TRIGGER user_tags_user_created_at
    BEFORE INSERT ON user_tags
    FOR EACH ROW WHEN (NEW.user_created_at IS NULL) EXECUTE FUNCTION copy_user_created_at();
CREATE TRIGGER user_tags_user_created_at_changed
    BEFORE UPDATE OF user_id, user_created_at ON user_tags
    FOR EACH ROW EXECUTE FUNCTION copy_user_created_at();
CREATE TRIGGER users_created_at_copied
    AFTER UPDATE OF created_at ON users
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION user_created_at_changed();

-- One organization's members, and the members with a role in any
-- organization, in sign-up order (the role is included so that one
-- organization's members with a given role are read from this index alone).
CREATE INDEX memberships_org_user_created ON memberships (organization_id, user_created_at, user_id) INCLUDE (role);
CREATE INDEX memberships_role_user_created ON memberships (role, user_created_at, user_id);
-- One tag's users in sign-up order.
CREATE INDEX user_tags_tag_user_created ON user_tags (tag_id, user_created_at, user_id);
