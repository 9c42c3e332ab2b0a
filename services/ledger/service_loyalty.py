"""Loyalty use cases: SetEarnRules, GetEarnRules, and awarding the points one posted transfer earns (called by the
event consumer in ``loyalty_consumer``).

An award is a LOYALTY_EARN transfer from the rule's funding account into the customer's points account (opened on
the first award), committed through ``commit.commit_transfers`` like any transfer (balance rules, hash chain,
outbox). It does not pass the risk or maker-checker gate: the platform pays it, no member makes it. Its id derives
from the event id and the rule id, so a redelivered event replays the existing transfer: points are awarded exactly
once per event and rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

import asyncpg
from prometheus_client import Counter

from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid
from services.ledger import domain_loyalty as loyalty
from services.ledger.caller import Caller
from services.ledger.commit import Clock, CommitStore, TransferItem, commit_transfers
from services.ledger.currencies import Currency
from services.ledger.domain_accounts import (
    Account,
    AccountKind,
    BalanceRule,
    OpenAccountCommand,
    new_account,
)
from services.ledger.domain_loyalty import EarnRule, EarnRuleInput, PostedSpend
from services.ledger.domain_transfers import TransferCommand, TransferKind
from services.ledger.events import account_event, outbox_row
from services.ledger.service import record_audit
from services.ledger.store_accounts import ClaimedRequest
from services.ledger.store_chain import OutboxRow
from services.ledger.store_ports import AccountReader, AuditWriter, RequestClaims

log = logging.getLogger(__name__)

LOYALTY_PRINCIPAL = "ledger-loyalty"
POINTS_AWARDED = Counter("wallet_ledger_loyalty_points_awarded_total", "Loyalty points awarded.", ["asset"])
AWARDS_DECLINED = Counter(
    "wallet_ledger_loyalty_awards_declined_total",
    "Awards the ledger declined (e.g. the funding account ran out of points), by reason.",
    ["reason"],
)


class LoyaltyStorePort(CommitStore, AccountReader, RequestClaims, AuditWriter, Protocol):
    async def enqueue_events(self, connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None: ...
    async def currency(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, code: str
    ) -> Currency | None: ...
    async def insert_account(self, connection: asyncpg.Connection, account: Account) -> bool: ...
    async def get_earn_rules(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID
    ) -> tuple[EarnRule, ...]: ...
    async def save_earn_rules(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        rules: tuple[EarnRule, ...],
        *,
        principal_id: str,
        now: dt.datetime,
    ) -> None: ...


class LoyaltyService:
    def __init__(self, pool: asyncpg.Pool, store: LoyaltyStorePort, clock: Clock) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock

    async def get_rules(self, caller: Caller) -> tuple[EarnRule, ...]:
        async with self._pool.acquire() as connection:
            return await self._store.get_earn_rules(connection, caller.organization_id)

    async def set_rules(self, caller: Caller, *, rules: list[EarnRuleInput], request_id: str) -> tuple[EarnRule, ...]:
        violations: list[FieldViolation] = []
        request = parse_uuid(request_id, "request_id", violations)
        parsed, rule_violations = loyalty.parse_earn_rules(rules)
        violations += rule_violations
        if violations:
            raise invalid(violations)
        assert request is not None
        org = caller.organization_id
        now = self._clock()
        fingerprint = hashlib.sha256(json.dumps([_rule_key(r) for r in parsed]).encode()).hexdigest()
        async with transaction(self._pool) as connection:
            await self._check_references(connection, org, parsed)
            claim = ClaimedRequest("SetEarnRules", org, fingerprint)
            earlier = await self._store.claim_request(connection, org, request, claim, now)
            old = await self._store.get_earn_rules(connection, org)
            if earlier is not None:
                if earlier.method != claim.method or earlier.fingerprint != claim.fingerprint:
                    raise IdempotencyKeyReused("request_id", "earn_rules")
                return old
            await self._store.save_earn_rules(connection, org, parsed, principal_id=caller.principal_id, now=now)
            await record_audit(
                self._store,
                connection,
                caller,
                method="SetEarnRules",
                resource_id=str(org),
                request_id=str(request),
                details={
                    "old_rules": json.dumps([_rule_key(r) for r in old]),
                    "new_rules": json.dumps([_rule_key(r) for r in parsed]),
                },
                now=now,
            )
        return parsed

    async def _check_references(
        self, connection: asyncpg.Connection, org: uuid.UUID, rules: tuple[EarnRule, ...]
    ) -> None:
        """Assets and currencies exist; each funding account is a tenant account (no customer) in the rule's asset."""
        violations: list[FieldViolation] = []
        for index, rule in enumerate(rules):
            field = f"earn_rules[{index}]"
            if await self._store.currency(connection, org, rule.asset_code) is None:
                violations.append(FieldViolation(f"{field}.asset_code", "is not a defined asset"))
            if await self._store.currency(connection, org, rule.spend_currency) is None:
                violations.append(FieldViolation(f"{field}.spend_currency", "is not a known currency or asset"))
            funding = await self._store.get_account(connection, org, rule.funding_account_id)
            if funding is None or funding.customer_id is not None:
                violations.append(FieldViolation(f"{field}.funding_account_id", "is not a tenant account"))
            elif funding.currency != rule.asset_code:
                violations.append(FieldViolation(f"{field}.funding_account_id", f"must hold {rule.asset_code}"))
        if violations:
            raise invalid(violations)

    async def award(self, spend: PostedSpend) -> int:
        """Pays what ``spend`` earns under the tenant's rules; returns the points newly awarded (0 on a replay)."""
        org = spend.organization_id
        caller = Caller(org, LOYALTY_PRINCIPAL, None)
        async with transaction(self._pool) as connection:
            rules = await self._store.get_earn_rules(connection, org)
            items: list[TransferItem] = []
            for rule in rules:
                points = rule.points_for(spend.kind, spend.currency, spend.posted_minor)
                if points <= 0:
                    continue
                account_id = await self._points_account(connection, org, spend.customer_id, rule.asset_code)
                command = TransferCommand(
                    transfer_id=loyalty.award_transfer_id(spend.event_id, rule.earn_rule_id),
                    debit_account_id=rule.funding_account_id,
                    credit_account_id=account_id,
                    currency=rule.asset_code,
                    amount_minor=points,
                    pending=False,
                    hold_timeout_ms=0,
                    reference=f"loyalty for {spend.transfer_id}",
                    kind=TransferKind.LOYALTY_EARN,
                )
                items.append(TransferItem(caller, command))
            if not items:
                return 0
            outcomes = await commit_transfers(connection, self._store, items, self._clock)
        awarded = 0
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.error is not None:
                # A changed rule meets an already paid award (IDEMPOTENCY_KEY_REUSED), or the funding account is
                # short: either way another delivery would decide the same, so the event is done.
                AWARDS_DECLINED.labels(outcome.error.reason).inc()
                log.warning(
                    "loyalty award declined",
                    extra={"fields": {"reason": outcome.error.reason, "transfer_id": str(item.command.transfer_id)}},
                )
            elif not outcome.replayed:
                awarded += item.command.amount_minor
                POINTS_AWARDED.labels(item.command.currency).inc(item.command.amount_minor)
        return awarded

    async def _points_account(
        self, connection: asyncpg.Connection, org: uuid.UUID, customer_id: uuid.UUID, asset_code: str
    ) -> uuid.UUID:
        account_id = loyalty.points_account_id(org, customer_id, asset_code)
        command = OpenAccountCommand(
            account_id,
            customer_id,
            AccountKind.CUSTOMER_WALLET,
            asset_code,
            BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
            0,
            None,
            "loyalty points",
        )
        account = new_account(org, command, self._clock())
        if await self._store.insert_account(connection, account):
            payload = account_event("OpenAccount", account, LOYALTY_PRINCIPAL)
            await self._store.enqueue_events(connection, [outbox_row(org, account_id, payload, self._clock())])
        return account_id


def _rule_key(rule: EarnRule) -> list[object]:
    return [
        str(rule.earn_rule_id),
        rule.asset_code,
        rule.spend_currency,
        [int(k) for k in rule.transfer_kinds],
        rule.points_per_step,
        rule.spend_step_minor,
        str(rule.funding_account_id),
    ]
