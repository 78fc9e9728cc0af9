INSERT INTO users_search (users_search, rank) VALUES ('automerge', 4);
