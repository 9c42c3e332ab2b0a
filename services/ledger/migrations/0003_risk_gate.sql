-- The risk gate's record on each transfer (wallet.ledger.v1.TransferRisk): whether it was assessed, failed open or
-- not required (risk_check 0 = the gate was off), risk's decision, score, app-safe reason codes (space-separated
-- UPPER_SNAKE codes), the rules version and, for REVIEW, the risk case that holds it (AWAITING_REVIEW, status 6).
ALTER TABLE transfers
    ADD COLUMN risk_check         smallint NOT NULL DEFAULT 0,
    ADD COLUMN risk_decision      smallint NOT NULL DEFAULT 0,
    ADD COLUMN risk_score         smallint NOT NULL DEFAULT 0 CHECK (risk_score BETWEEN 0 AND 100),
    ADD COLUMN risk_reason_codes  text     NOT NULL DEFAULT '',
    ADD COLUMN risk_rules_version bigint   NOT NULL DEFAULT 0,
    ADD COLUMN risk_case_id       uuid;

-- Holds awaiting review expire like client holds (the sweeper's work list covers both).
CREATE INDEX transfers_open_holds_and_reviews ON transfers (hold_expires_at) WHERE status IN (1, 6);
DROP INDEX transfers_open_holds;
