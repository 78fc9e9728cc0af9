-- The invitee's names, as the admin typed them: the accept page starts with
-- them filled in.
ALTER TABLE invitations ADD COLUMN first_name TEXT;
ALTER TABLE invitations ADD COLUMN last_name TEXT;
