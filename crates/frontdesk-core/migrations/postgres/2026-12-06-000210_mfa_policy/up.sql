-- An organization can require two-step sign-in of its members: a member
-- without a factor is taken through enrolment right after the password.
ALTER TABLE organizations ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
