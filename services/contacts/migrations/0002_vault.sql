-- The vault's tables. No column holds a plaintext phone number, card number or CVV: secrets are AES-256-GCM
-- ciphertexts under the data subject's data key, which is itself wrapped by a versioned key-encryption key (KEK).
-- Every tenant's data is keyed by organization_id first.

-- Vault-wide key state: which KEK and blind-index key versions are current (one row).
CREATE TABLE vault_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    current_kek_version integer NOT NULL CHECK (current_kek_version > 0),
    current_blind_index_version integer NOT NULL CHECK (current_blind_index_version > 0)
);
INSERT INTO vault_state (current_kek_version, current_blind_index_version) VALUES (1, 1);

-- One data key per data subject, wrapped by the KEK. Erasure sets wrapped_key to NULL (crypto-shredding).
CREATE TABLE data_key (
    organization_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    kek_version integer NOT NULL,
    wrapped_key bytea,
    created_at timestamptz NOT NULL,
    erased_at timestamptz,
    PRIMARY KEY (organization_id, customer_id),
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
CREATE INDEX data_key_rewrap ON data_key (kek_version) WHERE wrapped_key IS NOT NULL;

CREATE TABLE contact (
    organization_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    phone_ciphertext bytea,
    blind_index bytea,
    blind_index_version integer,
    region_code text NOT NULL,
    purposes smallint[] NOT NULL,
    consent_reference text NOT NULL,
    retention_s bigint NOT NULL CHECK (retention_s > 0),
    retain_until timestamptz NOT NULL,
    alert_thresholds jsonb NOT NULL DEFAULT '[]',
    discoverable boolean NOT NULL DEFAULT false,
    default_account_id uuid,
    discoverable_account_ids uuid[] NOT NULL DEFAULT '{}',
    -- HMAC (blind-index key) of the StoreContact request, so a replay can be compared without the plaintext.
    request_digest bytea NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    erased boolean NOT NULL DEFAULT false,
    PRIMARY KEY (organization_id, contact_id),
    CHECK ((deleted_at IS NULL) = (phone_ciphertext IS NOT NULL))
);
CREATE INDEX contact_by_customer ON contact (organization_id, customer_id, contact_id);
CREATE INDEX contact_page ON contact (organization_id, contact_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX contact_unique_number ON contact (organization_id, customer_id, blind_index)
    WHERE deleted_at IS NULL;
CREATE INDEX contact_lookup ON contact (organization_id, blind_index) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX contact_one_discoverable ON contact (organization_id, blind_index)
    WHERE discoverable AND deleted_at IS NULL;
CREATE INDEX contact_reindex ON contact (blind_index_version) WHERE deleted_at IS NULL;
CREATE INDEX contact_retention ON contact (retain_until) WHERE deleted_at IS NULL;

CREATE TABLE card_secret (
    organization_id uuid NOT NULL,
    card_secret_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    number_ciphertext bytea,
    cvv_ciphertext bytea,
    last_four text NOT NULL,
    expiry_month smallint NOT NULL CHECK (expiry_month BETWEEN 1 AND 12),
    expiry_year smallint NOT NULL,
    request_digest bytea NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (organization_id, card_secret_id),
    CHECK ((deleted_at IS NULL) = (number_ciphertext IS NOT NULL))
);
CREATE INDEX card_secret_by_customer ON card_secret (organization_id, customer_id);

-- Client-chosen request ids of mutations that are not creates (UpdateContact, DeleteContact, ...).
CREATE TABLE idempotent_request (
    organization_id uuid NOT NULL,
    request_id uuid NOT NULL,
    method text NOT NULL,
    request_digest bytea NOT NULL,
    resource_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, request_id)
);

CREATE TABLE notification (
    organization_id uuid NOT NULL,
    notification_id uuid NOT NULL,
    contact_id uuid,
    customer_id uuid,
    notification_template smallint NOT NULL,
    status smallint NOT NULL,
    sent_at timestamptz,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, notification_id)
);

-- The append-only access log. Entries are inserted without a position (no lock, so reads and resolves never queue
-- behind each other); the chainer gives each its per-tenant sequence and hash shortly after, in insertion order.
CREATE TABLE access_log (
    entry_number bigint GENERATED ALWAYS AS IDENTITY,
    organization_id uuid NOT NULL,
    access_log_entry_id uuid NOT NULL,
    sequence bigint,
    customer_id uuid NOT NULL,
    contact_id uuid,
    card_secret_id uuid,
    action smallint NOT NULL,
    actor_principal_id text NOT NULL,
    on_behalf_of_principal_id text NOT NULL DEFAULT '',
    reveal_purpose smallint NOT NULL DEFAULT 0,
    justification text NOT NULL DEFAULT '',
    trace_id text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL,
    entry_hash bytea,
    PRIMARY KEY (organization_id, access_log_entry_id),
    UNIQUE (organization_id, sequence),
    CHECK ((sequence IS NULL) = (entry_hash IS NULL))
);
CREATE INDEX access_log_unchained ON access_log (organization_id, entry_number) WHERE sequence IS NULL;
CREATE INDEX access_log_by_subject ON access_log (organization_id, customer_id, occurred_at DESC, access_log_entry_id DESC);

-- Append-only: the log is never edited or deleted, except that the chainer fills in sequence and hash once.
CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'access_log is append-only';
    END IF;
    IF OLD.sequence IS NOT NULL
        OR (NEW.organization_id, NEW.access_log_entry_id, NEW.customer_id, NEW.contact_id, NEW.card_secret_id,
            NEW.action, NEW.actor_principal_id, NEW.on_behalf_of_principal_id, NEW.reveal_purpose,
            NEW.justification, NEW.trace_id, NEW.occurred_at)
        IS DISTINCT FROM
           (OLD.organization_id, OLD.access_log_entry_id, OLD.customer_id, OLD.contact_id, OLD.card_secret_id,
            OLD.action, OLD.actor_principal_id, OLD.on_behalf_of_principal_id, OLD.reveal_purpose,
            OLD.justification, OLD.trace_id, OLD.occurred_at) THEN
        RAISE EXCEPTION 'access_log is append-only';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_append_only();

-- Per-tenant head of the chain: the last sequence and hash, locked by the chainer only.
CREATE TABLE access_log_head (
    organization_id uuid PRIMARY KEY,
    last_sequence bigint NOT NULL,
    last_hash bytea NOT NULL
);

CREATE TABLE erasure_receipt (
    organization_id uuid NOT NULL,
    request_id uuid NOT NULL,
    erasure_receipt_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    statement bytea NOT NULL,
    signature bytea NOT NULL,
    signing_key_id text NOT NULL,
    contacts_erased integer NOT NULL,
    card_secrets_erased integer NOT NULL,
    erased_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, request_id)
);

-- The vault's Ed25519 receipt-signing key: the private half wrapped by the KEK like a data key.
CREATE TABLE signing_key (
    signing_key_id text PRIMARY KEY,
    kek_version integer NOT NULL,
    wrapped_private_key bytea NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE key_job (
    key_job_id uuid PRIMARY KEY,
    request_id uuid NOT NULL UNIQUE,
    kind smallint NOT NULL,
    state smallint NOT NULL,
    from_key_version integer NOT NULL,
    to_key_version integer NOT NULL,
    items_total bigint NOT NULL,
    items_done bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    finished_at timestamptz,
    error text NOT NULL DEFAULT ''
);
-- One running key job at a time (KEY_ROTATION_IN_PROGRESS otherwise).
CREATE UNIQUE INDEX key_job_one_running ON key_job ((true)) WHERE state = 1;

CREATE TABLE backup (
    backup_id uuid PRIMARY KEY,
    location text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    backup_key_version integer NOT NULL,
    contact_count bigint NOT NULL,
    card_secret_count bigint NOT NULL,
    created_at timestamptz NOT NULL
);
