-- ResolvePhone misses are recorded too (who probed, when, trace id — never the number), so a hit and a miss do the
-- same work (one durable insert, one commit: no timing side channel for enumeration) and probing is visible.
CREATE TABLE resolve_miss (
    miss_number bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    actor_principal_id text NOT NULL,
    on_behalf_of_principal_id text NOT NULL DEFAULT '',
    trace_id text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL
);
CREATE INDEX resolve_miss_by_time ON resolve_miss (occurred_at);
