-- ReverseTransfer. A reversal is a new transfer (kind 5) from the original's credit account back to its debit
-- account; `reversal_of_transfer_id` links it to the original. Posted history is never edited: the original's row and
-- postings stay as they were, and its reversed amount is derived from its reversals (the partial index below).
ALTER TABLE transfers ADD COLUMN reversal_of_transfer_id uuid;
CREATE INDEX transfers_by_reversed ON transfers (organization_id, reversal_of_transfer_id)
    WHERE reversal_of_transfer_id IS NOT NULL;

-- What a ReverseTransfer call asked, for its idempotent replay and the audit: why (ReversalReason), the complaint
-- behind it, and the amount requested (NULL: everything left at the time).
CREATE TABLE transfer_reversals (
    organization_id        uuid        NOT NULL,
    transfer_id            uuid        NOT NULL,
    original_transfer_id   uuid        NOT NULL,
    reason                 smallint    NOT NULL CHECK (reason > 0),
    complaint_id           uuid,
    requested_amount_minor bigint      CHECK (requested_amount_minor > 0),
    created_at             timestamptz NOT NULL,
    PRIMARY KEY (organization_id, transfer_id)
);
