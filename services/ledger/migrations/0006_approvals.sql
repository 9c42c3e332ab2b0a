-- Maker-checker. The policy is one row per tenant (its rules as JSON, replaced whole by SetApprovalPolicy); each
-- decided transfer gets one approval row (who approved or rejected it, the note, the request id for replays).
CREATE TABLE approval_policies (
    organization_id         uuid        NOT NULL PRIMARY KEY,
    rules                   jsonb       NOT NULL,
    updated_at              timestamptz NOT NULL,
    updated_by_principal_id text        NOT NULL
);

CREATE TABLE transfer_approvals (
    organization_id          uuid        NOT NULL,
    transfer_id              uuid        NOT NULL,
    decision                 smallint    NOT NULL,
    decided_by_principal_id  text        NOT NULL,
    note                     text        NOT NULL,
    request_id               uuid        NOT NULL,
    decided_at               timestamptz NOT NULL,
    PRIMARY KEY (organization_id, transfer_id)
);

-- ListPendingApprovals (closest to expiry first) and the approval-expiry sweep: only transfers awaiting approval.
CREATE INDEX transfers_awaiting_approval ON transfers (organization_id, hold_expires_at, transfer_id)
    WHERE status = 5;
CREATE INDEX transfers_awaiting_approval_expiry ON transfers (hold_expires_at) WHERE status = 5;
