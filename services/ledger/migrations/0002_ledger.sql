-- The ledger's tables. Every table is keyed by organization_id first, so a tenant-distributed Postgres (Citus,
-- distribution column organization_id) can hold it without changing a query (see services/ledger/README.md).
-- Enum columns hold the proto enum numbers. Amounts are bigint minor units.

CREATE TABLE assets (
    organization_id uuid        NOT NULL,
    asset_code      text        NOT NULL,
    scale           smallint    NOT NULL CHECK (scale BETWEEN 0 AND 18),
    display_name    text        NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, asset_code)
);

CREATE TABLE accounts (
    organization_id           uuid        NOT NULL,
    account_id                uuid        NOT NULL,
    customer_id               uuid,
    kind                      smallint    NOT NULL,
    currency                  text        NOT NULL,
    balance_rule              smallint    NOT NULL,
    status                    smallint    NOT NULL,
    credit_limit_minor        bigint      NOT NULL DEFAULT 0 CHECK (credit_limit_minor >= 0),
    daily_outflow_limit_minor bigint      CHECK (daily_outflow_limit_minor >= 0),
    outflow_day               date        NOT NULL,
    outflow_used_minor        bigint      NOT NULL DEFAULT 0 CHECK (outflow_used_minor >= 0),
    posted_debits_minor       bigint      NOT NULL DEFAULT 0 CHECK (posted_debits_minor >= 0),
    posted_credits_minor      bigint      NOT NULL DEFAULT 0 CHECK (posted_credits_minor >= 0),
    pending_debits_minor      bigint      NOT NULL DEFAULT 0 CHECK (pending_debits_minor >= 0),
    pending_credits_minor     bigint      NOT NULL DEFAULT 0 CHECK (pending_credits_minor >= 0),
    posting_count             bigint      NOT NULL DEFAULT 0,
    last_posted_at            timestamptz,
    label                     text        NOT NULL DEFAULT '',
    freeze_reason             text        NOT NULL DEFAULT '',
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    closed_at                 timestamptz,
    PRIMARY KEY (organization_id, account_id)
);
CREATE INDEX accounts_by_customer ON accounts (organization_id, customer_id, account_id) WHERE customer_id IS NOT NULL;

-- Idempotency of the account verbs that carry a request_id (freeze, unfreeze, close, limits).
CREATE TABLE account_requests (
    organization_id uuid        NOT NULL,
    request_id      uuid        NOT NULL,
    method          text        NOT NULL,
    account_id      uuid        NOT NULL,
    fingerprint     text        NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, request_id)
);

CREATE TABLE audit_events (
    organization_id    uuid        NOT NULL,
    audit_event_id     uuid        NOT NULL,
    method             text        NOT NULL,
    actor_principal_id text        NOT NULL,
    resource_id        text        NOT NULL,
    request_id         text        NOT NULL,
    trace_id           text        NOT NULL,
    details            jsonb       NOT NULL,
    occurred_at        timestamptz NOT NULL,
    PRIMARY KEY (organization_id, audit_event_id)
);
CREATE INDEX audit_events_by_resource ON audit_events (organization_id, resource_id, audit_event_id);

CREATE TABLE transfers (
    organization_id         uuid        NOT NULL,
    transfer_id             uuid        NOT NULL,
    debit_account_id        uuid        NOT NULL,
    credit_account_id       uuid        NOT NULL,
    currency                text        NOT NULL,
    amount_minor            bigint      NOT NULL CHECK (amount_minor > 0),
    kind                    smallint    NOT NULL,
    status                  smallint    NOT NULL,
    reference               text        NOT NULL,
    pending                 boolean     NOT NULL,
    hold_timeout_ms         bigint      NOT NULL,
    posted_amount_minor     bigint      NOT NULL DEFAULT 0,
    hold_expires_at         timestamptz,
    void_reason             smallint    NOT NULL DEFAULT 0,
    batch_id                uuid,
    exchange_id             uuid,
    created_by_principal_id text        NOT NULL,
    finalize_request_id     uuid,
    sequence                bigint      NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL,
    posted_at               timestamptz,
    finalized_at            timestamptz,
    PRIMARY KEY (organization_id, transfer_id)
);
-- ListTransfers: newest first, keyset on (created_at, transfer_id); one index per way of filtering by account.
CREATE INDEX transfers_by_time ON transfers (organization_id, created_at, transfer_id);
CREATE INDEX transfers_by_debit ON transfers (organization_id, debit_account_id, created_at, transfer_id);
CREATE INDEX transfers_by_credit ON transfers (organization_id, credit_account_id, created_at, transfer_id);
CREATE INDEX transfers_by_batch ON transfers (organization_id, batch_id, created_at, transfer_id)
    WHERE batch_id IS NOT NULL;
-- The expiry sweeper's work list: only open holds are in it.
CREATE INDEX transfers_open_holds ON transfers (hold_expires_at) WHERE status = 1;

-- One row per account per posted amount. posted_at and account_seq grow together per account (the writer holds the
-- account's row lock), so the primary key serves both the statement's time bounds and its keyset order.
CREATE TABLE postings (
    organization_id         uuid        NOT NULL,
    account_id              uuid        NOT NULL,
    posted_at               timestamptz NOT NULL,
    account_seq             bigint      NOT NULL,
    transfer_id             uuid        NOT NULL,
    side                    smallint    NOT NULL,
    amount_minor            bigint      NOT NULL CHECK (amount_minor > 0),
    counterparty_account_id uuid        NOT NULL,
    posted_debits_after     bigint      NOT NULL,
    posted_credits_after    bigint      NOT NULL,
    sequence                bigint      NOT NULL,
    PRIMARY KEY (organization_id, account_id, posted_at, account_seq)
);

-- Tamper evidence: one hash chain per tenant. The head row is the tenant's append point (locked once per group
-- commit, not once per transfer).
CREATE TABLE chain_heads (
    organization_id uuid   NOT NULL PRIMARY KEY,
    last_sequence   bigint NOT NULL,
    last_hash       bytea  NOT NULL,
    sealed_through  bigint NOT NULL DEFAULT 0,
    block_count     bigint NOT NULL DEFAULT 0
);

CREATE TABLE chain_entries (
    organization_id   uuid        NOT NULL,
    sequence          bigint      NOT NULL,
    entry_kind        smallint    NOT NULL,
    transfer_id       uuid        NOT NULL,
    debit_account_id  uuid        NOT NULL,
    credit_account_id uuid        NOT NULL,
    currency          text        NOT NULL,
    amount_minor      bigint      NOT NULL,
    occurred_at       timestamptz NOT NULL,
    previous_hash     bytea       NOT NULL,
    entry_hash        bytea       NOT NULL,
    PRIMARY KEY (organization_id, sequence)
);

CREATE TABLE chain_blocks (
    organization_id uuid        NOT NULL,
    block_number    bigint      NOT NULL,
    first_sequence  bigint      NOT NULL,
    last_sequence   bigint      NOT NULL,
    merkle_root     bytea       NOT NULL,
    sealed_at       timestamptz NOT NULL,
    PRIMARY KEY (organization_id, block_number)
);
CREATE UNIQUE INDEX chain_blocks_by_last_sequence ON chain_blocks (organization_id, last_sequence);

CREATE TABLE transfer_batches (
    organization_id uuid        NOT NULL,
    batch_id        uuid        NOT NULL,
    fingerprint     text        NOT NULL,
    results         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (organization_id, batch_id)
);

CREATE TABLE fx_rates (
    organization_id     uuid        NOT NULL,
    base_currency       text        NOT NULL,
    quote_currency      text        NOT NULL,
    rate                numeric     NOT NULL CHECK (rate > 0),
    set_at              timestamptz NOT NULL,
    set_by_principal_id text        NOT NULL,
    valid_until         timestamptz,
    request_id          uuid        NOT NULL,
    PRIMARY KEY (organization_id, base_currency, quote_currency)
);

CREATE TABLE fx_quotes (
    organization_id   uuid        NOT NULL,
    quote_id          uuid        NOT NULL,
    debit_account_id  uuid        NOT NULL,
    credit_account_id uuid        NOT NULL,
    sell_currency     text        NOT NULL,
    sell_amount_minor bigint      NOT NULL,
    buy_currency      text        NOT NULL,
    buy_amount_minor  bigint      NOT NULL,
    rate              numeric     NOT NULL,
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    exchange_id       uuid,
    PRIMARY KEY (organization_id, quote_id)
);

CREATE TABLE exchanges (
    organization_id   uuid        NOT NULL,
    exchange_id       uuid        NOT NULL,
    quote_id          uuid        NOT NULL,
    sell_transfer_id  uuid        NOT NULL,
    buy_transfer_id   uuid        NOT NULL,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (organization_id, exchange_id),
    UNIQUE (organization_id, quote_id)
);

-- services/kit/outbox.py OUTBOX_TABLE_SQL, copied as the kit asks.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    stream        text NOT NULL,
    partition_key text NOT NULL,
    envelope      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
