-- Nothing on SQLite: its index on the same expression already answers the
-- recent-activity filters from the index alone (see the PostgreSQL twin).
SELECT 1;
