"""SQL for accounts, assets, request idempotency and audit events. asyncpg only; rows map to domain types here."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ledger.currencies import Currency, iso_currency
from services.ledger.domain_accounts import Account, AccountKind, AccountStatus, BalanceRule, Balances

AccountKey = tuple[uuid.UUID, uuid.UUID]

_ACCOUNT_COLUMNS = """organization_id, account_id, customer_id, kind, currency, balance_rule, status,
    credit_limit_minor, daily_outflow_limit_minor, outflow_day, outflow_used_minor, posted_debits_minor,
    posted_credits_minor, pending_debits_minor, pending_credits_minor, posting_count, last_posted_at, label,
    freeze_reason, created_at, updated_at, closed_at"""


# Column value → enum member by a dict lookup: calling the enum class costs several times more, and a batch of
# transfers maps two accounts per item. An unknown value still fails loudly (the enum call raises ValueError).
_KINDS = {int(member): member for member in AccountKind}
_BALANCE_RULES = {int(member): member for member in BalanceRule}
_STATUSES = {int(member): member for member in AccountStatus}


def account_from_row(row: Mapping[str, Any]) -> Account:
    kind, rule, status = row["kind"], row["balance_rule"], row["status"]
    return Account(
        organization_id=row["organization_id"],
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        kind=_KINDS.get(kind) or AccountKind(kind),
        currency=row["currency"],
        balance_rule=_BALANCE_RULES.get(rule) or BalanceRule(rule),
        status=_STATUSES.get(status) or AccountStatus(status),
        credit_limit_minor=row["credit_limit_minor"],
        daily_outflow_limit_minor=row["daily_outflow_limit_minor"],
        outflow_day=row["outflow_day"],
        outflow_used_minor=row["outflow_used_minor"],
        balances=Balances(
            posted_debits_minor=row["posted_debits_minor"],
            posted_credits_minor=row["posted_credits_minor"],
            pending_debits_minor=row["pending_debits_minor"],
            pending_credits_minor=row["pending_credits_minor"],
        ),
        posting_count=row["posting_count"],
        last_posted_at=row["last_posted_at"],
        label=row["label"],
        freeze_reason=row["freeze_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
    )


@dataclass(frozen=True, slots=True)
class AccountFilter:
    customer_id: uuid.UUID | None
    kind: int
    currency: str
    status: int


@dataclass(frozen=True, slots=True)
class ClaimedRequest:
    method: str
    account_id: uuid.UUID
    fingerprint: str


class AccountStore:
    async def currency(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, code: str
    ) -> Currency | None:
        iso = iso_currency(code)
        if iso is not None:
            return iso
        row = await connection.fetchrow(
            "SELECT asset_code, scale, display_name FROM assets WHERE organization_id = $1 AND asset_code = $2",
            organization_id,
            code,
        )
        if row is None:
            return None
        return Currency(code=row["asset_code"], scale=row["scale"], name=row["display_name"], iso=False)

    async def insert_asset(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, asset: Currency, now: dt.datetime
    ) -> tuple[Currency, dt.datetime]:
        """Inserts the asset unless it exists; returns the stored one (the caller compares for idempotency)."""
        row = await connection.fetchrow(
            """INSERT INTO assets (organization_id, asset_code, scale, display_name, created_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (organization_id, asset_code) DO UPDATE SET asset_code = EXCLUDED.asset_code
               RETURNING asset_code, scale, display_name, created_at""",
            organization_id,
            asset.code,
            asset.scale,
            asset.name,
            now,
        )
        assert row is not None
        return Currency(row["asset_code"], row["scale"], row["display_name"], iso=False), row["created_at"]

    async def list_assets(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, after_code: str, limit: int
    ) -> list[tuple[Currency, dt.datetime]]:
        rows = await connection.fetch(
            """SELECT asset_code, scale, display_name, created_at FROM assets
               WHERE organization_id = $1 AND asset_code > $2 ORDER BY asset_code LIMIT $3""",
            organization_id,
            after_code,
            limit,
        )
        return [(Currency(r["asset_code"], r["scale"], r["display_name"], iso=False), r["created_at"]) for r in rows]

    async def insert_account(self, connection: asyncpg.Connection, account: Account) -> bool:
        """False when an account with this id exists already (nothing written)."""
        b = account.balances
        status = await connection.execute(
            f"""INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES
               ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)
               ON CONFLICT (organization_id, account_id) DO NOTHING""",  # noqa: S608 -- only constant SQL fragments are interpolated
            account.organization_id,
            account.account_id,
            account.customer_id,
            int(account.kind),
            account.currency,
            int(account.balance_rule),
            int(account.status),
            account.credit_limit_minor,
            account.daily_outflow_limit_minor,
            account.outflow_day,
            account.outflow_used_minor,
            b.posted_debits_minor,
            b.posted_credits_minor,
            b.pending_debits_minor,
            b.pending_credits_minor,
            account.posting_count,
            account.last_posted_at,
            account.label,
            account.freeze_reason,
            account.created_at,
            account.updated_at,
            account.closed_at,
        )
        return bool(status == "INSERT 0 1")

    async def get_account(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
    ) -> Account | None:
        suffix = " FOR UPDATE" if lock else ""
        row = await connection.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE organization_id = $1 AND account_id = $2{suffix}",  # noqa: S608 -- constant fragments
            organization_id,
            account_id,
        )
        return None if row is None else account_from_row(row)

    async def lock_accounts(
        self, connection: asyncpg.Connection, keys: Sequence[AccountKey]
    ) -> dict[AccountKey, Account]:
        """Locks the accounts in one fixed order (organization, account id) so concurrent writers never deadlock."""
        ordered = sorted(set(keys))
        rows = await connection.fetch(
            f"""SELECT {_ACCOUNT_COLUMNS} FROM accounts
                WHERE (organization_id, account_id) IN (
                    SELECT * FROM unnest($1::uuid[], $2::uuid[]))
                ORDER BY organization_id, account_id FOR UPDATE""",  # noqa: S608 -- only constant SQL fragments are interpolated
            [k[0] for k in ordered],
            [k[1] for k in ordered],
        )
        accounts = (account_from_row(row) for row in rows)
        return {(a.organization_id, a.account_id): a for a in accounts}

    async def list_accounts(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        filters: AccountFilter,
        after_account_id: uuid.UUID | None,
        limit: int,
    ) -> list[Account]:
        rows = await connection.fetch(
            f"""SELECT {_ACCOUNT_COLUMNS} FROM accounts
                WHERE organization_id = $1
                  AND ($2::uuid IS NULL OR customer_id = $2)
                  AND ($3::smallint = 0 OR kind = $3)
                  AND ($4::text = '' OR currency = $4)
                  AND ($5::smallint = 0 OR status = $5)
                  AND ($6::uuid IS NULL OR account_id > $6)
                ORDER BY account_id LIMIT $7""",  # noqa: S608 -- only constant SQL fragments are interpolated
            organization_id,
            filters.customer_id,
            filters.kind,
            filters.currency,
            filters.status,
            after_account_id,
            limit,
        )
        return [account_from_row(row) for row in rows]

    async def update_account_state(self, connection: asyncpg.Connection, account: Account) -> None:
        """Writes status, limits and labels (not balances: those go through ``save_balances``)."""
        await connection.execute(
            """UPDATE accounts SET status = $3, freeze_reason = $4, credit_limit_minor = $5,
                   daily_outflow_limit_minor = $6, updated_at = $7, closed_at = $8
               WHERE organization_id = $1 AND account_id = $2""",
            account.organization_id,
            account.account_id,
            int(account.status),
            account.freeze_reason,
            account.credit_limit_minor,
            account.daily_outflow_limit_minor,
            account.updated_at,
            account.closed_at,
        )

    async def claim_request(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        request_id: uuid.UUID,
        claim: ClaimedRequest,
        now: dt.datetime,
    ) -> ClaimedRequest | None:
        """Records the request id; returns the earlier claim when the id was used before (nothing written)."""
        row = await connection.fetchrow(
            """WITH inserted AS (
                   INSERT INTO account_requests (organization_id, request_id, method, account_id, fingerprint, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1)
               SELECT method, account_id, fingerprint FROM account_requests
               WHERE organization_id = $1 AND request_id = $2 AND NOT EXISTS (SELECT 1 FROM inserted)""",
            organization_id,
            request_id,
            claim.method,
            claim.account_id,
            claim.fingerprint,
            now,
        )
        if row is None:
            return None
        return ClaimedRequest(row["method"], row["account_id"], row["fingerprint"])

    async def insert_audit_event(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        audit_event_id: uuid.UUID,
        method: str,
        actor_principal_id: str,
        resource_id: str,
        request_id: str,
        trace_id: str,
        details: Mapping[str, str],
        occurred_at: dt.datetime,
    ) -> None:
        await connection.execute(
            """INSERT INTO audit_events (organization_id, audit_event_id, method, actor_principal_id, resource_id,
                   request_id, trace_id, details, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)""",
            organization_id,
            audit_event_id,
            method,
            actor_principal_id,
            resource_id,
            request_id,
            trace_id,
            json.dumps(dict(details), sort_keys=True),
            occurred_at,
        )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    audit_event_id: uuid.UUID
    method: str
    actor_principal_id: str
    resource_id: str
    request_id: str
    trace_id: str
    details: dict[str, str]
    occurred_at: dt.datetime


class AuditStore:
    async def list_audit_events(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        resource_id: str,
        actor_principal_id: str,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> list[AuditEvent]:
        """Newest first by audit_event_id (UUIDv7, time-ordered); the resource filter uses its own index."""
        rows = await connection.fetch(
            """SELECT * FROM audit_events
               WHERE organization_id = $1 AND ($2 = '' OR resource_id = $2) AND ($3 = '' OR actor_principal_id = $3)
                 AND ($4::timestamptz IS NULL OR occurred_at >= $4) AND ($5::timestamptz IS NULL OR occurred_at < $5)
                 AND ($6::uuid IS NULL OR audit_event_id < $6)
               ORDER BY audit_event_id DESC LIMIT $7""",
            organization_id,
            resource_id,
            actor_principal_id,
            start_time,
            end_time,
            before_id,
            limit,
        )
        return [
            AuditEvent(
                r["audit_event_id"],
                r["method"],
                r["actor_principal_id"],
                r["resource_id"],
                r["request_id"],
                r["trace_id"],
                json.loads(r["details"]),
                r["occurred_at"],
            )
            for r in rows
        ]
