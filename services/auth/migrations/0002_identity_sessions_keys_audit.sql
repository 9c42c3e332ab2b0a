-- Auth's schema: tenants and their principals (members, customers, service accounts), credentials, sessions and
-- refresh-token families, token-signing keys, brute-force counters (Postgres fallback), the append-only audit
-- table and the transactional outbox. Every tenant-owned row is keyed by organization_id first.

CREATE TABLE organizations (
    organization_id        uuid PRIMARY KEY,
    slug                   text NOT NULL UNIQUE,
    display_name           text NOT NULL,
    is_platform            boolean NOT NULL DEFAULT false,
    mfa_required           boolean NOT NULL DEFAULT false,
    password_min_length    integer NOT NULL DEFAULT 12 CHECK (password_min_length BETWEEN 12 AND 128),
    session_max_lifetime_s bigint NOT NULL DEFAULT 2592000,
    session_idle_timeout_s bigint NOT NULL DEFAULT 1209600,
    customer_self_sign_up  boolean NOT NULL DEFAULT false,
    policy_updated_at      timestamptz NOT NULL DEFAULT now(),
    created_at             timestamptz NOT NULL DEFAULT now()
);

-- The platform's own tenant: holds the suite's service accounts (ledger, contacts, risk calling each other).
INSERT INTO organizations (organization_id, slug, display_name, is_platform)
VALUES ('00000000-0000-0000-0000-000000000000', 'platform', 'Wallet platform', true);

CREATE TABLE principals (
    organization_id            uuid NOT NULL REFERENCES organizations,
    principal_id               uuid NOT NULL,
    kind                       text NOT NULL CHECK (kind IN ('member', 'customer', 'service')),
    email                      text,
    display_name               text NOT NULL,
    external_reference         text,
    roles                      text[] NOT NULL DEFAULT '{}',
    scopes                     text[] NOT NULL DEFAULT '{}',
    status                     text NOT NULL CHECK (status IN ('invited', 'active', 'disabled')),
    password_hash              text,
    totp_secret_sealed         bytea,
    totp_last_step             bigint NOT NULL DEFAULT 0,
    totp_pending_sealed        bytea,
    totp_pending_expires_at    timestamptz,
    client_secret_hash         bytea,
    previous_secret_hash       bytea,
    previous_secret_expires_at timestamptz,
    secret_rotated_at          timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    last_login_at              timestamptz,
    PRIMARY KEY (principal_id),
    UNIQUE (organization_id, principal_id)
);
-- One login per organization across members and customers (Login does not say which kind signs in).
CREATE UNIQUE INDEX principals_login ON principals (organization_id, lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX principals_external_reference ON principals (organization_id, external_reference)
    WHERE external_reference IS NOT NULL;
CREATE INDEX principals_by_kind_email ON principals (organization_id, kind, email, principal_id);

CREATE TABLE recovery_codes (
    principal_id uuid NOT NULL REFERENCES principals,
    code_hash    bytea NOT NULL,
    used_at      timestamptz,
    PRIMARY KEY (principal_id, code_hash)
);

CREATE TABLE invitations (
    token_hash      bytea PRIMARY KEY,
    organization_id uuid NOT NULL,
    principal_id    uuid NOT NULL REFERENCES principals,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);

CREATE TABLE sessions (
    session_id      uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    principal_id    uuid NOT NULL REFERENCES principals,
    kind            text NOT NULL,
    device_id       text NOT NULL DEFAULT '',
    amr             text[] NOT NULL,
    -- Signed in with a password only while the organization requires MFA: tokens only allow enrolment.
    enrolment_only  boolean NOT NULL DEFAULT false,
    user_agent      text NOT NULL DEFAULT '',
    source_ip       text NOT NULL DEFAULT '',
    auth_time       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoke_cause    text
);
CREATE INDEX sessions_by_principal ON sessions (organization_id, principal_id, last_used_at DESC, session_id DESC);

-- One row per refresh token ever issued (hash only). A rotated row keeps the hash of its successor.
CREATE TABLE refresh_tokens (
    token_hash     bytea PRIMARY KEY,
    session_id     uuid NOT NULL REFERENCES sessions,
    created_at     timestamptz NOT NULL,
    rotated_at     timestamptz,
    successor_hash bytea
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE mfa_challenges (
    mfa_challenge_id uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    principal_id     uuid NOT NULL REFERENCES principals,
    device_id        text NOT NULL DEFAULT '',
    user_agent       text NOT NULL DEFAULT '',
    source_ip        text NOT NULL DEFAULT '',
    expires_at       timestamptz NOT NULL,
    failed_attempts  integer NOT NULL DEFAULT 0,
    used_at          timestamptz
);

-- Client-chosen request ids of mutations that have no new resource id of their own.
CREATE TABLE idempotency_keys (
    organization_id uuid NOT NULL,
    request_id      uuid NOT NULL,
    operation       text NOT NULL,
    target_id       text NOT NULL,
    request_digest  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, request_id)
);

CREATE TABLE signing_keys (
    key_id              text PRIMARY KEY,
    status              text NOT NULL CHECK (status IN ('active', 'retiring')),
    public_x            text NOT NULL,
    private_key_sealed  bytea NOT NULL,
    created_at          timestamptz NOT NULL,
    retiring_at         timestamptz,
    -- When the key leaves the JWKS: its retirement plus the longest token lifetime plus clock skew.
    retired_at          timestamptz,
    rotation_request_id uuid UNIQUE
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

-- Brute-force counters used while Redis is unreachable (keys are keyed HMACs, never a login or an address).
CREATE TABLE login_failure_counters (
    counter_key     bytea PRIMARY KEY,
    failures        integer NOT NULL,
    next_allowed_at timestamptz,
    locked_until    timestamptz,
    expires_at      timestamptz NOT NULL
);

CREATE TABLE audit_events (
    audit_event_id     uuid PRIMARY KEY,
    organization_id    uuid NOT NULL,
    event_type         text NOT NULL,
    principal_id       text NOT NULL DEFAULT '',
    actor_principal_id text NOT NULL DEFAULT '',
    source_ip          text NOT NULL DEFAULT '',
    trace_id           text NOT NULL DEFAULT '',
    details            jsonb NOT NULL,
    occurred_at        timestamptz NOT NULL
);
CREATE INDEX audit_events_by_org ON audit_events (organization_id, audit_event_id DESC);

-- Append-only: the audit trail is never edited.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    stream        text NOT NULL,
    partition_key text NOT NULL,
    envelope      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
