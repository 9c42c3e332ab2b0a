-- Complaints and disputes (issue 14): the complaint with its SLA clocks, its notes, an append-only audit of every
-- step (actor, action, time, trace id; no free text, so it can be exported for compliance reviews without personal
-- data), the per-tenant reference-number sequence and the customer notifications waiting to be handed to the
-- contacts vault. Every timestamp comes from the service's clock (not now()), so tests can move time.

CREATE TABLE complaint_sequences (
    organization_id uuid NOT NULL,
    year            integer NOT NULL,
    last_number     bigint NOT NULL,
    PRIMARY KEY (organization_id, year)
);

CREATE TABLE complaints (
    organization_id           uuid NOT NULL,
    complaint_id              uuid NOT NULL,
    reference_number          text NOT NULL,
    customer_id               text NOT NULL,
    category                  smallint NOT NULL,
    status                    smallint NOT NULL,
    transfer_id               text NOT NULL,
    card_id                   text NOT NULL,
    description               text NOT NULL,
    attachment_references     text[] NOT NULL,
    escalation_level          integer NOT NULL DEFAULT 0,
    opened_by_principal_id    text NOT NULL,
    opened_at                 timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    acknowledge_due_at        timestamptz NOT NULL,
    acknowledged_at           timestamptz,
    acknowledge_request_id    uuid,
    -- Moved later by each finished wait for the customer; while one is running, awaiting_since is set.
    resolve_due_at            timestamptz NOT NULL,
    awaiting_since            timestamptz,
    -- Set when an approver's resolution starts (before the ledger refund), final once resolved_at is set.
    resolve_request_id        uuid,
    resolution_outcome        smallint,
    resolution_reason         text,
    refund_amount_minor       bigint,
    refund_currency           text,
    refund_transfer_id        text,
    resolved_by_principal_id  text,
    resolved_at               timestamptz,
    PRIMARY KEY (organization_id, complaint_id),
    UNIQUE (organization_id, reference_number)
);
CREATE INDEX complaints_oldest_first ON complaints (organization_id, opened_at, complaint_id);
CREATE INDEX complaints_by_customer ON complaints (organization_id, customer_id, opened_at, complaint_id);
CREATE INDEX complaints_open ON complaints (category) WHERE resolved_at IS NULL;

CREATE TABLE complaint_notes (
    organization_id     uuid NOT NULL,
    complaint_note_id   uuid NOT NULL,
    complaint_id        uuid NOT NULL,
    author_principal_id text NOT NULL,
    from_customer       boolean NOT NULL,
    visibility          smallint NOT NULL,
    text                text NOT NULL,
    created_at          timestamptz NOT NULL,
    PRIMARY KEY (organization_id, complaint_note_id),
    FOREIGN KEY (organization_id, complaint_id) REFERENCES complaints
);
CREATE INDEX complaint_notes_by_complaint ON complaint_notes (organization_id, complaint_id, created_at);

CREATE TABLE complaint_events (
    organization_id    uuid NOT NULL,
    complaint_id       uuid NOT NULL,
    event_number       bigint GENERATED ALWAYS AS IDENTITY,
    action             text NOT NULL,
    actor_principal_id text NOT NULL,
    trace_id           text NOT NULL,
    occurred_at        timestamptz NOT NULL,
    PRIMARY KEY (organization_id, complaint_id, event_number),
    FOREIGN KEY (organization_id, complaint_id) REFERENCES complaints
);
CREATE INDEX complaint_events_by_time ON complaint_events (organization_id, occurred_at, event_number);

CREATE TABLE complaint_notifications (
    organization_id  uuid NOT NULL,
    notification_id  uuid NOT NULL,
    complaint_id     uuid NOT NULL,
    customer_id      text NOT NULL,
    reference_number text NOT NULL,
    status_name      text NOT NULL,
    message          text NOT NULL,
    created_at       timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    sent_at          timestamptz,
    PRIMARY KEY (organization_id, notification_id),
    FOREIGN KEY (organization_id, complaint_id) REFERENCES complaints
);
CREATE INDEX complaint_notifications_pending ON complaint_notifications (created_at) WHERE sent_at IS NULL;
