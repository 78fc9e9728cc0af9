-- The lockout's counts read only the attempts that count (failures) and the
-- admins' clearings that reset an IP's count. Without these, both counts
-- walked every attempt of the email or the IP within the window and checked
-- its reason row by row: for an office behind one address, or a bot, that is
-- every sign-in of the window. The predicates are written out exactly as
-- `login_attempts::COUNTED_SQL` and `CLEARED_SQL` write them in the queries,
-- so both backends' planners can prove a query implies them.
CREATE INDEX login_attempts_email_counted ON login_attempts (email, created_at)
    WHERE reason IN ('bad_password', 'unknown_email', 'mfa_failed', 'passkey_failed');
CREATE INDEX login_attempts_ip_counted ON login_attempts (ip, created_at)
    WHERE reason IN ('bad_password', 'unknown_email', 'mfa_failed', 'passkey_failed');
CREATE INDEX login_attempts_ip_cleared ON login_attempts (ip, created_at)
    WHERE reason = 'lockout_cleared';
