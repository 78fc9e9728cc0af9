DROP INDEX login_attempts_ip_cleared;
DROP INDEX login_attempts_ip_counted;
DROP INDEX login_attempts_email_counted;
