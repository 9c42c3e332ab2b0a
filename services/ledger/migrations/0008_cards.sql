-- Virtual cards. The number and CVV live only in the contacts vault: a card row holds the vault's id
-- (card_secret_id), the last four digits, the expiry, the status, the limits and the UTC day's spending.
CREATE TABLE cards (
    organization_id             uuid        NOT NULL,
    card_id                     uuid        NOT NULL,
    account_id                  uuid        NOT NULL,
    customer_id                 uuid        NOT NULL,
    currency                    text        NOT NULL,
    status                      smallint    NOT NULL,
    last_four                   text        NOT NULL CHECK (last_four ~ '^[0-9]{4}$'),
    expiry_month                smallint    NOT NULL CHECK (expiry_month BETWEEN 1 AND 12),
    expiry_year                 smallint    NOT NULL,
    card_secret_id              uuid        NOT NULL,
    per_transaction_limit_minor bigint      CHECK (per_transaction_limit_minor > 0),
    daily_limit_minor           bigint      CHECK (daily_limit_minor > 0),
    spent_day                   date        NOT NULL,
    spent_minor                 bigint      NOT NULL DEFAULT 0 CHECK (spent_minor >= 0),
    label                       text        NOT NULL DEFAULT '',
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL,
    closed_at                   timestamptz,
    PRIMARY KEY (organization_id, card_id)
);
CREATE INDEX cards_by_account ON cards (organization_id, account_id, card_id);

-- Which card authorized which hold, the day it counted against, and the request ids of capture / release.
CREATE TABLE card_payments (
    organization_id  uuid        NOT NULL,
    transfer_id      uuid        NOT NULL,
    card_id          uuid        NOT NULL,
    authorized_day   date        NOT NULL,
    amount_minor     bigint      NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (organization_id, transfer_id)
);
