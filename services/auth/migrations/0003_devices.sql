-- Trusted devices (issue 13): a hardware-held public key per app installation, and the single-use challenges the
-- device signs for a biometric step-up. Sessions keep their free-form `device_id`; a session belongs to a
-- registered device when (principal_id, device_id) matches a row here.

CREATE TABLE devices (
    principal_id    uuid NOT NULL REFERENCES principals,
    device_id       text NOT NULL,
    organization_id uuid NOT NULL,
    display_name    text NOT NULL,
    platform        text NOT NULL,
    model           text NOT NULL,
    app_version     text NOT NULL,
    key_algorithm   text NOT NULL,
    -- DER SubjectPublicKeyInfo (a public key: not a secret).
    public_key      bytea NOT NULL,
    status          text NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz NOT NULL,
    revoked_at      timestamptz,
    PRIMARY KEY (principal_id, device_id)
);
CREATE INDEX devices_by_last_use ON devices (principal_id, last_used_at DESC, device_id DESC);

CREATE TABLE device_challenges (
    device_challenge_id uuid PRIMARY KEY,
    organization_id     uuid NOT NULL,
    principal_id        uuid NOT NULL,
    device_id           text NOT NULL,
    -- The caller's session when it was created: the step-up token belongs to the same session.
    session_id          uuid,
    bound_method        text NOT NULL,
    bound_resource_id   text NOT NULL,
    amount_currency     text NOT NULL DEFAULT '',
    amount_minor        bigint,
    -- The exact bytes the device signs (canonical JSON with the nonce, device, operation and expiry).
    signing_payload     bytea NOT NULL,
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    FOREIGN KEY (principal_id, device_id) REFERENCES devices (principal_id, device_id)
);
CREATE INDEX device_challenges_by_expiry ON device_challenges (expires_at);
