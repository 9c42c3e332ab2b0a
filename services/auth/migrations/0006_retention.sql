-- Retention (issue 14): auth's retention job (services/auth/store_retention.py) deletes records past their retention
-- in bounded batches. These indexes let each batch find its oldest rows without scanning the table, and the audit
-- trail stays append-only except for that job: a DELETE passes only inside a transaction that set
-- wallet.retention_purge, which only the retention store does.

CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
CREATE INDEX invitations_by_expiry ON invitations (expires_at);
CREATE INDEX login_failure_counters_by_expiry ON login_failure_counters (expires_at);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
CREATE INDEX audit_events_by_time ON audit_events (occurred_at);

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('wallet.retention_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
