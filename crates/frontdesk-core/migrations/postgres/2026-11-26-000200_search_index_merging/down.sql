-- Nothing to do: the SQLite migration of the same name tunes its FTS5 search
-- index; PostgreSQL's pg_trgm index needs no such setting.
SELECT 1;
