-- Invoices (payment requests). No status column: the status derives from cancelled_at, the latest payment
-- transfer's state and due_at (services/ledger/domain_invoices.py), so "paid" has one source of truth.
CREATE TABLE invoices (
    organization_id         uuid        NOT NULL,
    invoice_id              uuid        NOT NULL,
    payee_account_id        uuid        NOT NULL,
    currency                text        NOT NULL,
    amount_minor            bigint      NOT NULL CHECK (amount_minor > 0),
    reference               text        NOT NULL,
    due_at                  timestamptz NOT NULL,
    line_items              jsonb       NOT NULL,
    payer_customer_id       uuid,
    created_by_principal_id text        NOT NULL,
    created_at              timestamptz NOT NULL,
    payment_transfer_id     uuid,
    cancelled_at            timestamptz,
    cancel_reason           text        NOT NULL DEFAULT '',
    cancel_request_id       uuid,
    PRIMARY KEY (organization_id, invoice_id)
);
-- ListInvoices: newest first, keyset on (created_at, invoice_id); one index per way of filtering.
CREATE INDEX invoices_by_time ON invoices (organization_id, created_at, invoice_id);
CREATE INDEX invoices_by_payee ON invoices (organization_id, payee_account_id, created_at, invoice_id);
CREATE INDEX invoices_by_payer ON invoices (organization_id, payer_customer_id, created_at, invoice_id)
    WHERE payer_customer_id IS NOT NULL;
-- One invoice per payment transfer.
CREATE UNIQUE INDEX invoices_by_payment ON invoices (organization_id, payment_transfer_id)
    WHERE payment_transfer_id IS NOT NULL;
