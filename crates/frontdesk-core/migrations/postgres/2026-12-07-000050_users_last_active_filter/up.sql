-- The recent-activity filters ("active in the last N days", "inactive for N
-- days") are written on the descending last-activity sort key (users/query.rs),
-- so each is one range of this index. Carrying the column itself lets
-- PostgreSQL count that range with an index-only scan: without it, it cannot
-- tell the expression from the index and reads the table instead (at 1M users,
-- 145 ms against 50 ms for 262k matches on a loaded 2-core machine).
DROP INDEX users_last_active_sort_desc;
CREATE INDEX users_last_active_sort_desc ON users ((COALESCE(last_active_at, '0001-01-01 00:00:00')), id) INCLUDE (last_active_at);
