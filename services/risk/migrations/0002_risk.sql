-- Risk's tables: rule-set versions, block/allow lists, recorded assessments, review cases with their audited
-- history, AML reports and an audit trail for rule and list changes. Every table is keyed by organization first.

CREATE TABLE rule_heads (
    organization_id uuid PRIMARY KEY,
    active_version  bigint NOT NULL
);

CREATE TABLE rule_versions (
    organization_id           uuid NOT NULL,
    version                   bigint NOT NULL CHECK (version > 0),
    document                  text NOT NULL,
    format                    smallint NOT NULL,
    checksum                  text NOT NULL,
    comment                   text NOT NULL,
    copied_from_version       bigint NOT NULL DEFAULT 0,
    published_by_principal_id text NOT NULL,
    request_id                uuid NOT NULL,
    published_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, version),
    UNIQUE (organization_id, request_id)
);

CREATE TABLE list_entries (
    organization_id         uuid NOT NULL,
    list_entry_id           uuid NOT NULL,
    list_kind               smallint NOT NULL,
    entry_type              smallint NOT NULL,
    value                   text NOT NULL,
    reason                  text NOT NULL,
    expires_at              timestamptz,
    created_by_principal_id text NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    removed_at              timestamptz,
    removed_by_principal_id text,
    remove_request_id       uuid,
    PRIMARY KEY (organization_id, list_entry_id)
);
CREATE INDEX list_entries_by_time ON list_entries (organization_id, created_at DESC, list_entry_id DESC);

CREATE TABLE assessments (
    organization_id   uuid NOT NULL,
    assessment_id     uuid NOT NULL,
    transfer_id       text NOT NULL,
    debit_account_id  uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    decision          smallint NOT NULL,
    score             smallint NOT NULL,
    reason_codes      text[] NOT NULL,
    rules_version     bigint NOT NULL,
    evaluation_us     integer NOT NULL,
    case_id           uuid,
    anomaly_score     smallint NOT NULL,
    anomaly_shadow    boolean NOT NULL,
    context           jsonb NOT NULL,
    features          jsonb NOT NULL,
    list_outcome      text NOT NULL,
    assessed_at       timestamptz NOT NULL,
    PRIMARY KEY (organization_id, assessment_id)
);
CREATE INDEX assessments_by_time ON assessments (organization_id, assessed_at DESC, assessment_id DESC);
CREATE INDEX assessments_by_debit ON assessments (organization_id, debit_account_id, assessed_at DESC, assessment_id DESC);
CREATE INDEX assessments_by_credit ON assessments (organization_id, credit_account_id, assessed_at DESC, assessment_id DESC);

CREATE TABLE review_cases (
    organization_id          uuid NOT NULL,
    case_id                  uuid NOT NULL,
    assessment_id            uuid NOT NULL,
    transfer_id              text NOT NULL,
    debit_account_id         uuid NOT NULL,
    credit_account_id        uuid NOT NULL,
    status                   smallint NOT NULL,
    assessment               jsonb NOT NULL,
    hold_expires_at          timestamptz,
    resolved_by_principal_id text NOT NULL DEFAULT '',
    resolution_note          text NOT NULL DEFAULT '',
    resolve_request_id       uuid,
    ledger_confirmed         boolean NOT NULL DEFAULT false,
    opened_at                timestamptz NOT NULL,
    closed_at                timestamptz,
    PRIMARY KEY (organization_id, case_id),
    UNIQUE (organization_id, assessment_id)
);
CREATE INDEX review_cases_open_first ON review_cases (organization_id, status, opened_at, case_id);
CREATE INDEX review_cases_by_transfer ON review_cases (organization_id, transfer_id);

CREATE TABLE case_events (
    organization_id    uuid NOT NULL,
    case_id            uuid NOT NULL,
    event_number       bigint GENERATED ALWAYS AS IDENTITY,
    action             text NOT NULL,
    actor_principal_id text NOT NULL,
    note               text NOT NULL,
    occurred_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, case_id, event_number),
    FOREIGN KEY (organization_id, case_id) REFERENCES review_cases
);

CREATE TABLE aml_reports (
    organization_id  uuid NOT NULL,
    aml_report_id    uuid NOT NULL,
    kind             smallint NOT NULL,
    account_id       uuid NOT NULL,
    customer_id      text NOT NULL,
    transfer_ids     text[] NOT NULL,
    total_amount_minor bigint NOT NULL,
    currency         text NOT NULL,
    threshold_minor  bigint NOT NULL,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    -- One report per kind and triggering transfer: redelivered events add nothing.
    trigger_transfer_id text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, aml_report_id),
    UNIQUE (organization_id, kind, trigger_transfer_id)
);
CREATE INDEX aml_reports_by_time ON aml_reports (organization_id, created_at DESC, aml_report_id DESC);
CREATE INDEX aml_reports_by_account ON aml_reports (organization_id, account_id, kind, window_end DESC);

CREATE TABLE audit_events (
    organization_id    uuid NOT NULL,
    audit_id           bigint GENERATED ALWAYS AS IDENTITY,
    action             text NOT NULL,
    subject            text NOT NULL,
    actor_principal_id text NOT NULL,
    detail             jsonb NOT NULL,
    occurred_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, audit_id)
);
