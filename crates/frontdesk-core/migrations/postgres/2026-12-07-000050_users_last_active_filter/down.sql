DROP INDEX users_last_active_sort_desc;
CREATE INDEX users_last_active_sort_desc ON users ((COALESCE(last_active_at, '0001-01-01 00:00:00')), id);
