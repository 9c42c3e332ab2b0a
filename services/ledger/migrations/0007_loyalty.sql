-- Loyalty earn rules: one row per tenant holding the whole rule set as JSON (replaced whole by SetEarnRules).
-- Awards need no table of their own: each is a transfer whose id derives from the event id and the rule id, so the
-- transfers' primary key makes a redelivered event a replay.
CREATE TABLE earn_rule_sets (
    organization_id         uuid        NOT NULL PRIMARY KEY,
    rules                   jsonb       NOT NULL,
    updated_at              timestamptz NOT NULL,
    updated_by_principal_id text        NOT NULL
);
