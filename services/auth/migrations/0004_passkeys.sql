-- WebAuthn passkeys (issue 13): one row per registered credential, and the single-use ceremonies (registration and
-- authentication challenges) that produce and use them.

CREATE TABLE passkeys (
    passkey_id      uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    principal_id    uuid NOT NULL REFERENCES principals,
    -- The WebAuthn credential id (raw bytes): unique across the platform, as authenticators make it.
    credential_id   bytea NOT NULL UNIQUE,
    -- COSE public key from the attestation (a public key: not a secret).
    public_key      bytea NOT NULL,
    sign_count      bigint NOT NULL,
    aaguid          text NOT NULL,
    backup_eligible boolean NOT NULL,
    backed_up       boolean NOT NULL,
    display_name    text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    -- Deleted passkeys stay (so a replayed DeletePasskey answers the same) but never verify again.
    deleted_at      timestamptz
);
CREATE INDEX passkeys_by_principal ON passkeys (principal_id, created_at DESC, passkey_id DESC);

CREATE TABLE passkey_ceremonies (
    ceremony_id     uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('registration', 'authentication')),
    organization_id uuid NOT NULL,
    -- The registering principal; for authentication the named login's principal when known (else NULL).
    principal_id    uuid,
    challenge       bytea NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);
