-- At most one pending invitation per address and organization: two admins
-- inviting the same person at once get one invitation and one "resend it" error.
CREATE UNIQUE INDEX invitations_one_pending ON invitations (organization_id, email) WHERE status = 'pending';
CREATE INDEX invitations_status_expiry ON invitations (status, expires_at);
