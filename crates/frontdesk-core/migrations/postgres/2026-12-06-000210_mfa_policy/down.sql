ALTER TABLE organizations DROP COLUMN require_mfa;
