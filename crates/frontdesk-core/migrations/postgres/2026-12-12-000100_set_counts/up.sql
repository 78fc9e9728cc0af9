-- Exact counts of the largest sets in constant time: all users, and the users
-- with each tag. On PostgreSQL an exact `count(*)` of 1,000,000 users reads
-- 1,000,000 index entries (35 ms on an idle 2-core machine, more under load),
-- which no page of the users list can afford; "tags none of" (all users less
-- the tagged ones) needs two such counts.
--
-- Each statement that adds or removes users or tag assignments, whoever runs
-- it (frontdesk's code, an import, a cascade from a deleted user or tag, the
-- host's own SQL), appends one row per changed set with the change (`n`),
-- written by statement-level triggers in the same transaction. Rows are only
-- ever appended by writers, never updated, so concurrent writers never wait
-- on each other nor deadlock over a counter; a count is the sum of its set's
-- rows, which a reader folds into one row now and then (under an advisory
-- lock, so that two readers never fold the same rows).
CREATE TABLE set_counts (
    id BIGSERIAL PRIMARY KEY,
    -- 'users': every user (key 0); 'tag': the users with tag `key`
    counted TEXT NOT NULL CHECK (counted IN ('users', 'tag')),
    key BIGINT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX set_counts_set ON set_counts (counted, key) INCLUDE (n);

-- `SET search_path FROM CURRENT`: the functions find frontdesk's tables
-- whatever the writing session's path is.
CREATE FUNCTION count_users_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO set_counts (counted, key, n)
            SELECT 'users', 0, count(*) FROM new_rows HAVING count(*) > 0;
    ELSE
        INSERT INTO set_counts (counted, key, n)
            SELECT 'users', 0, -count(*) FROM old_rows HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_user_tags_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO set_counts (counted, key, n)
            SELECT 'tag', tag_id, count(*) FROM new_rows GROUP BY tag_id;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO set_counts (counted, key, n)
            SELECT 'tag', tag_id, -count(*) FROM old_rows GROUP BY tag_id;
    ELSE
        -- An update moves a row only when it changes `tag_id` (the sign-up
        -- time's copy is rewritten far more often, and changes no count).
        INSERT INTO set_counts (counted, key, n)
            SELECT 'tag', c.tag_id, sum(c.n) FROM (
                SELECT tag_id, 1 AS n FROM new_rows
                UNION ALL
                SELECT tag_id, -1 AS n FROM old_rows
            ) c GROUP BY c.tag_id HAVING sum(c.n) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM set_counts WHERE counted = TG_ARGV[0];
    RETURN NULL;
END
$$;

CREATE TRIGGER users_counted_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_users_changed();
CREATE TRIGGER users_counted_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_users_changed();
CREATE TRIGGER users_counted_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION count_truncated('users');
CREATE TRIGGER user_tags_counted_insert AFTER INSERT ON user_tags
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_user_tags_changed();
CREATE TRIGGER user_tags_counted_delete AFTER DELETE ON user_tags
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_user_tags_changed();
CREATE TRIGGER user_tags_counted_update AFTER UPDATE ON user_tags
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_user_tags_changed();
CREATE TRIGGER user_tags_counted_truncate AFTER TRUNCATE ON user_tags
    FOR EACH STATEMENT EXECUTE FUNCTION count_truncated('tag');

-- The counts so far. Creating the triggers locked both tables against writes
-- until this migration commits, so no change falls between the two.
INSERT INTO set_counts (counted, key, n) SELECT 'users', 0, count(*) FROM users HAVING count(*) > 0;
INSERT INTO set_counts (counted, key, n)
    SELECT 'tag', tag_id, count(*) FROM user_tags GROUP BY tag_id;
