DROP INDEX invitations_status_expiry;
DROP INDEX invitations_one_pending;
