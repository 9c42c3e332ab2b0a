"""Virtual-card use cases: IssueCard, GetCard, FreezeCard, UnfreezeCard, CloseCard, RevealCard and the card
processor's AuthorizeCardPayment (a hold), CaptureCardPayment (post, full or partial), ReleaseCardPayment (void).

Card limits are enforced in the commit's transaction: authorize locks the card row (serializing the card's
authorizations), reads the day's spending derived from its payments (see ``domain_cards``), and commits the hold
through ``commit.commit_transfers`` on the same connection (lock order: card → accounts → chain head; nothing else
locks a card while holding account locks). Capture, release, VoidPendingTransfer and the expiry sweeper change
only the hold, and the derived day follows. The number and CVV never reach
this module's storage: the vault generates them (``StoreCardSecret`` with ``generate``) and reveals them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import asyncpg

from services.kit import paging
from services.kit.db import transaction
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid
from services.ledger import domain_cards as cards
from services.ledger.caller import Caller
from services.ledger.card_vault import CardVault, RevealedCard
from services.ledger.commit import (
    Clock,
    CommitStore,
    HoldItem,
    TransferItem,
    commit_hold_transitions,
    commit_transfers,
)
from services.ledger.domain_accounts import AccountKind, Money, ensure_usable, validate_money_field
from services.ledger.domain_cards import Card, CardLimits, CardStatus
from services.ledger.domain_transfers import (
    HoldAction,
    HoldTransition,
    Transfer,
    TransferCommand,
    TransferKind,
    VoidReason,
    parse_transfer,
)
from services.ledger.errors import AccountNotFound, CardNotFound, CurrencyMismatch, SameAccount, TransferNotFound
from services.ledger.events import card_revealed_event, outbox_row
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.service import record_audit
from services.ledger.service_transfers import PreCommitGate
from services.ledger.store_accounts import ClaimedRequest
from services.ledger.store_chain import OutboxRow
from services.ledger.store_ports import AccountReader, AuditWriter, RequestClaims


class CardStorePort(CommitStore, AccountReader, RequestClaims, AuditWriter, Protocol):
    async def enqueue_events(self, connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None: ...
    async def insert_card(self, connection: asyncpg.Connection, card: Card) -> bool: ...
    async def get_card(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        card_id: uuid.UUID,
        *,
        day: dt.date,
        lock: bool = False,
    ) -> Card | None: ...
    async def save_card(self, connection: asyncpg.Connection, card: Card) -> None: ...
    async def list_cards(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        *,
        account_id: uuid.UUID | None,
        status: int,
        after_card_id: uuid.UUID | None,
        limit: int,
        day: dt.date,
    ) -> list[Card]: ...
    async def insert_card_payment(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        transfer_id: uuid.UUID,
        card_id: uuid.UUID,
        authorized_day: dt.date,
        amount_minor: int,
    ) -> None: ...
    async def get_card_payment(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> tuple[uuid.UUID, dt.date, int] | None: ...


@dataclass(frozen=True, slots=True)
class CardPaymentRequest:
    transfer_id: str
    card_id: str
    merchant_account_id: str
    amount: Money | None
    reference: str
    hold_timeout_ms: int


class CardService:
    def __init__(
        self, pool: asyncpg.Pool, store: CardStorePort, clock: Clock, vault: CardVault, gate: PreCommitGate
    ) -> None:
        self._pool = pool
        self._store = store
        self._clock = clock
        self._vault = vault
        self._gate = gate

    async def issue_card(
        self,
        caller: Caller,
        *,
        card_id: str,
        account_id: str,
        per_transaction_limit: Money | None,
        daily_limit: Money | None,
        label: str,
    ) -> Card:
        violations: list[FieldViolation] = []
        card_key = parse_uuid(card_id, "card_id", violations)
        account_key = parse_uuid(account_id, "account_id", violations)
        cards.validate_label(label, violations)
        if violations:
            raise invalid(violations)
        assert card_key is not None
        assert account_key is not None
        org = caller.organization_id
        today = self._clock().date()
        async with self._pool.acquire() as connection:
            account = await self._store.get_account(connection, org, account_key)
            existing = await self._store.get_card(connection, org, card_key, day=today)
        if account is None or not caller.may_see(account.customer_id):
            raise AccountNotFound()
        card_limits = cards.parse_limits("limits", account.currency, per_transaction_limit, daily_limit, violations)
        if account.kind is not AccountKind.CUSTOMER_WALLET or account.customer_id is None:
            violations.append(FieldViolation("account_id", "must be a customer's wallet account"))
        if violations:
            raise invalid(violations)
        assert account.customer_id is not None
        if existing is not None:
            return _replayed_card(existing, account_key, card_limits, label)
        ensure_usable(account)
        secret_id = cards.card_secret_id_for(card_key)
        # Outside any transaction (a call to another service); the derived secret id makes a retry reuse it.
        stored = await self._vault.store_generated(org, secret_id, account.customer_id)
        now = self._clock()
        card = Card(
            organization_id=org,
            card_id=card_key,
            account_id=account_key,
            customer_id=account.customer_id,
            currency=account.currency,
            status=CardStatus.ACTIVE,
            last_four=stored.last_four,
            expiry_month=stored.expiry_month,
            expiry_year=stored.expiry_year,
            card_secret_id=secret_id,
            limits=card_limits,
            daily_spent_minor=0,
            label=label,
            created_at=now,
            updated_at=now,
            closed_at=None,
        )
        async with transaction(self._pool) as connection:
            if await self._store.insert_card(connection, card):
                return card
            raced = await self._store.get_card(connection, org, card_key, day=now.date())
        assert raced is not None
        return _replayed_card(raced, account_key, card_limits, label)

    async def get_card(self, caller: Caller, card_id: str) -> Card:
        card_key = _parse_id(card_id, "card_id")
        async with self._pool.acquire() as connection:
            card = await self._store.get_card(connection, caller.organization_id, card_key, day=self._clock().date())
        if card is None or not caller.may_see(card.customer_id):
            raise CardNotFound()
        return card

    async def list_cards(
        self, caller: Caller, *, page_size: int, page_token: str, account_id: str, status: int
    ) -> Page[Card]:
        """Customers list the cards of one of their accounts (``account_id`` required, as for ListTransfers)."""
        violations: list[FieldViolation] = []
        size = checked_page_size(page_size, violations)
        account = parse_uuid(account_id, "account_id", violations, required=caller.customer_id is not None)
        if status == CardStatus.EXPIRED:
            violations.append(FieldViolation("status", "EXPIRED is derived from the expiry; list ACTIVE cards"))
        elif status and status not in CardStatus._value2member_map_:
            violations.append(FieldViolation("status", "is not a known status"))
        if violations:
            raise invalid(violations)
        org = caller.organization_id
        filter_key = {"a": str(account or ""), "s": status}
        after = cursor_uuid(paging.decode_page_token(page_token, filter_key), "i")
        async with self._pool.acquire() as connection:
            if account is not None:
                owner = await self._store.get_account(connection, org, account)
                if owner is None or not caller.may_see(owner.customer_id):
                    raise AccountNotFound()
            rows = await self._store.list_cards(
                connection,
                org,
                account_id=account,
                status=status,
                after_card_id=after,
                limit=size + 1,
                day=self._clock().date(),
            )
        page, token = paging.next_page(rows, size, lambda c: {"i": str(c.card_id)}, filter_key)
        return Page(page, token)

    async def change_status(self, caller: Caller, *, method: str, card_id: str, request_id: str) -> Card:
        """FreezeCard, UnfreezeCard, CloseCard (which also deletes the secret in the vault)."""
        violations: list[FieldViolation] = []
        card_key = parse_uuid(card_id, "card_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        if violations:
            raise invalid(violations)
        assert card_key is not None
        assert request is not None
        action = {"FreezeCard": "freeze", "UnfreezeCard": "unfreeze", "CloseCard": "close"}[method]
        current = await self.get_card(caller, card_id)
        if method == "CloseCard" and current.status is not CardStatus.CLOSED:
            cards.change_status(current, action, self._clock())  # refuse early, before touching the vault
            # The vault first: if the ledger's update then fails, the retry deletes again (idempotent) and closes.
            await self._vault.delete(caller.organization_id, current.card_secret_id, request)
        org = caller.organization_id
        now = self._clock()
        async with transaction(self._pool) as connection:
            card = await self._store.get_card(connection, org, card_key, day=now.date(), lock=True)
            assert card is not None
            earlier = await self._store.claim_request(
                connection, org, request, ClaimedRequest(method, card_key, ""), now
            )
            if earlier is not None:
                if (earlier.method, earlier.account_id) != (method, card_key):
                    raise IdempotencyKeyReused("request_id", "method")
                return card
            changed = cards.change_status(card, action, now)
            await self._store.save_card(connection, changed)
            await record_audit(
                self._store,
                connection,
                caller,
                method=method,
                resource_id=str(card_key),
                request_id=str(request),
                details={"old_status": card.status.name, "new_status": changed.status.name},
                now=now,
            )
        return changed

    async def update_limits(
        self,
        caller: Caller,
        *,
        card_id: str,
        paths: list[str],
        per_transaction_limit: Money | None,
        daily_limit: Money | None,
        request_id: str,
    ) -> Card:
        """UpdateCardLimits: the masked limits replaced (a listed but unset one removed), on an ACTIVE or FROZEN
        card. Customers may only tighten them (``domain_cards.apply_limits_update``). Idempotent by request id."""
        violations: list[FieldViolation] = []
        card_key = parse_uuid(card_id, "card_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        mask = cards.validate_limit_paths(paths, violations)
        wanted = (
            per_transaction_limit if cards.LIMIT_PATHS[0] in mask else None,
            daily_limit if cards.LIMIT_PATHS[1] in mask else None,
        )
        for field, money in zip(cards.LIMIT_PATHS, wanted, strict=True):
            if money is not None:
                validate_money_field(field, money.currency, money.amount_minor, violations, positive=True)
        if violations:
            raise invalid(violations)
        assert card_key is not None
        assert request is not None
        current = await self.get_card(caller, card_id)  # NOT_FOUND for other tenants and other customers
        update = cards.CardLimitsUpdate(
            mask, cards.parse_limits("limits", current.currency, wanted[0], wanted[1], violations)
        )
        if violations:
            raise invalid(violations)
        org = caller.organization_id
        now = self._clock()
        claim = ClaimedRequest("UpdateCardLimits", card_key, update.fingerprint())
        async with transaction(self._pool) as connection:
            card = await self._store.get_card(connection, org, card_key, day=now.date(), lock=True)
            assert card is not None
            earlier = await self._store.claim_request(connection, org, request, claim, now)
            if earlier is not None:
                if earlier.method != claim.method:
                    raise IdempotencyKeyReused("request_id", "method")
                if earlier.account_id != claim.account_id:
                    raise IdempotencyKeyReused("request_id", "card_id")
                if earlier.fingerprint != claim.fingerprint:
                    raise IdempotencyKeyReused("request_id", "limits")
                return card
            changed = cards.apply_limits_update(card, update, tighten_only=caller.customer_id is not None, now=now)
            await self._store.save_card(connection, changed)
            await record_audit(
                self._store,
                connection,
                caller,
                method="UpdateCardLimits",
                resource_id=str(card_key),
                request_id=str(request),
                details={
                    "old_per_transaction_limit_minor": _optional(card.limits.per_transaction_minor),
                    "new_per_transaction_limit_minor": _optional(changed.limits.per_transaction_minor),
                    "old_daily_limit_minor": _optional(card.limits.daily_minor),
                    "new_daily_limit_minor": _optional(changed.limits.daily_minor),
                },
                now=now,
            )
        return changed

    async def reveal(self, caller: Caller, card_id: str) -> tuple[Card, RevealedCard]:
        """The number and CVV from the vault, whose access log records the reveal against the caller. Only an
        ACTIVE card reveals; the step-up is enforced by the method's policy."""
        card = await self.get_card(caller, card_id)
        cards.ensure_active(card, self._clock())
        async with transaction(self._pool) as connection:
            # Audited before the secret leaves the vault: a reveal whose reply is lost is still on record.
            now = self._clock()
            await record_audit(
                self._store,
                connection,
                caller,
                method="RevealCard",
                resource_id=str(card.card_id),
                request_id="",
                details={"last_four": card.last_four},
                now=now,
            )
            # The holder's alert (contacts' consumer texts them), in the audit's transaction: at least once.
            event = card_revealed_event(card, caller.principal_id, caller.device_id)
            await self._store.enqueue_events(
                connection, [outbox_row(caller.organization_id, card.account_id, event, now)]
            )
        revealed = await self._vault.reveal(caller.organization_id, card.card_secret_id, caller.principal_id)
        return card, revealed

    async def authorize_payment(self, caller: Caller, request: CardPaymentRequest) -> Transfer:
        violations: list[FieldViolation] = []
        card_key = parse_uuid(request.card_id, "card_id", violations)
        command, transfer_violations = parse_transfer(
            transfer_id=request.transfer_id,
            # The card's account is the debit side; validated once the card is read.
            debit_account_id=str(uuid.UUID(int=0)),
            credit_account_id=request.merchant_account_id,
            amount=request.amount,
            pending=True,
            hold_timeout_ms=request.hold_timeout_ms,
            reference=request.reference,
        )
        violations += [_renamed(v) for v in transfer_violations]
        if violations:
            raise invalid(violations)
        assert card_key is not None
        assert command is not None
        card = await self.get_card(caller, request.card_id)
        if command.currency != card.currency:
            raise CurrencyMismatch("amount.currency", card.currency)
        if command.credit_account_id == card.account_id:
            raise SameAccount()
        command = _card_command(command, card)
        command = await self._gate.before_commit(caller, command)
        org = caller.organization_id
        now = self._clock()
        async with transaction(self._pool) as connection:
            locked = await self._store.get_card(connection, org, card_key, day=now.date(), lock=True)
            assert locked is not None
            earlier = await self._store.get_card_payment(connection, org, command.transfer_id)
            if earlier is None:
                cards.authorize(locked, locked.daily_spent_minor, command.amount_minor, now)
            outcomes = await commit_transfers(connection, self._store, [TransferItem(caller, command)], self._clock)
            outcome = outcomes[0]
            if outcome.error is not None:
                raise outcome.error
            assert outcome.transfer is not None
            if outcome.replayed:
                if earlier is None or earlier[0] != card_key:
                    raise IdempotencyKeyReused("transfer_id", "card_id")
                return outcome.transfer
            await self._store.insert_card_payment(
                connection, org, command.transfer_id, card_key, now.date(), command.amount_minor
            )
        return outcome.transfer

    async def finish_payment(
        self, caller: Caller, *, transfer_id: str, request_id: str, capture: bool, amount: Money | None = None
    ) -> Transfer:
        """CaptureCardPayment (post all or part of the hold) and ReleaseCardPayment (void it). What is not
        captured no longer counts against the card's day (derived from the hold's state)."""
        violations: list[FieldViolation] = []
        transfer_key = parse_uuid(transfer_id, "transfer_id", violations)
        request = parse_uuid(request_id, "request_id", violations)
        if amount is not None and amount.amount_minor <= 0:
            violations.append(FieldViolation("amount.amount_minor", "must be positive"))
        if violations:
            raise invalid(violations)
        assert transfer_key is not None
        assert request is not None
        org = caller.organization_id
        transition = HoldTransition(
            action=HoldAction.POST if capture else HoldAction.VOID,
            post_amount_minor=amount.amount_minor if amount is not None else None,
            void_reason=VoidReason.CARD_PAYMENT_RELEASED,
            request_id=request,
        )
        async with transaction(self._pool) as connection:
            payment = await self._store.get_card_payment(connection, org, transfer_key)
            if payment is None:
                raise TransferNotFound()
            card_key, authorized_day, _ = payment
            card = await self._store.get_card(connection, org, card_key, day=authorized_day)
            assert card is not None
            if amount is not None and amount.currency != card.currency:
                raise CurrencyMismatch("amount.currency", card.currency)
            outcomes = await commit_hold_transitions(
                connection, self._store, [HoldItem(caller, transfer_key, transition)], self._clock
            )
            outcome = outcomes[0]
            if outcome.error is not None:
                raise outcome.error
            assert outcome.transfer is not None
        return outcome.transfer


def _replayed_card(existing: Card, account_id: uuid.UUID, wanted: CardLimits, label: str) -> Card:
    if existing.account_id != account_id:
        raise IdempotencyKeyReused("card_id", "account_id")
    if existing.limits != wanted:
        raise IdempotencyKeyReused("card_id", "limits")
    if existing.label != label:
        raise IdempotencyKeyReused("card_id", "label")
    return existing


def _card_command(command: TransferCommand, card: Card) -> TransferCommand:
    """The payment as a hold on the card's account."""
    return replace(command, debit_account_id=card.account_id, kind=TransferKind.CARD_PAYMENT)


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)


def _renamed(violation: FieldViolation) -> FieldViolation:
    if violation.field == "credit_account_id":
        return FieldViolation("merchant_account_id", violation.description)
    return violation


def _parse_id(value: str, field: str) -> uuid.UUID:
    violations: list[FieldViolation] = []
    parsed = parse_uuid(value, field, violations)
    if violations:
        raise invalid(violations)
    assert parsed is not None
    return parsed
