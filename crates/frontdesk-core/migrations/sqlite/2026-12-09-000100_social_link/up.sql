-- Host-wide social providers share the sign-in state of single sign-on
-- (`provider` is then `social:<key>`). A state started from a signed-in
-- user's "Linked accounts" page links the identity to that user instead of
-- signing in: the callback checks the browser is still that user's.
ALTER TABLE sso_states ADD COLUMN link_user_id BIGINT REFERENCES users (id) ON DELETE CASCADE;
