ALTER TABLE sso_states DROP COLUMN link_user_id;
