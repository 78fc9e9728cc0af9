ALTER TABLE invitations DROP COLUMN last_name;
ALTER TABLE invitations DROP COLUMN first_name;
