-- The users list's "Last active" sort, both directions, with never-active users
-- last; the expressions are those of the query (users/query.rs), so the sort
-- walks an index as the last sign-in sort does.
CREATE INDEX users_last_active_sort_asc ON users ((COALESCE(last_active_at, '9999-12-31 23:59:59')), id);
CREATE INDEX users_last_active_sort_desc ON users ((COALESCE(last_active_at, '0001-01-01 00:00:00')), id);
