"""Virtual-card use cases: IssueCard, GetCard, FreezeCard, UnfreezeCard, CloseCard, RevealCard and the card
processor's AuthorizeCardPayment (a hold), CaptureCardPayment (post, full or partial), ReleaseCardPayment (void).

Card limits are enforced in the commit's transaction: authorize locks the card row, checks and books the day's
spending, and commits the hold through ``commit.commit_transfers`` on the same connection (lock order: card →
accounts → chain head; nothing else locks a card while holding account locks). The number and CVV never reach
this module's storage: the vault generates them (``StoreCardSecret`` with ``generate``) and reveals them.
"""

from __future__ import annotations

import datetime as dt
import uuid
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
from services.ledger.domain_accounts import AccountKind, Money, ensure_usable
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
from services.ledger.pages import Page, checked_page_size, cursor_uuid
from services.ledger.service import record_audit
from services.ledger.service_transfers import PreCommitGate
from services.ledger.store_accounts import ClaimedRequest
from services.ledger.store_ports import AccountReader, AuditWriter, RequestClaims


class CardStorePort(CommitStore, AccountReader, RequestClaims, AuditWriter, Protocol):
    async def insert_card(self, connection: asyncpg.Connection, card: Card) -> bool: ...
    async def get_card(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, card_id: uuid.UUID, *, lock: bool = False
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
        async with self._pool.acquire() as connection:
            account = await self._store.get_account(connection, org, account_key)
            existing = await self._store.get_card(connection, org, card_key)
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
            spent_day=now.date(),
            spent_minor=0,
            label=label,
            created_at=now,
            updated_at=now,
            closed_at=None,
        )
        async with transaction(self._pool) as connection:
            if await self._store.insert_card(connection, card):
                return card
            raced = await self._store.get_card(connection, org, card_key)
        assert raced is not None
        return _replayed_card(raced, account_key, card_limits, label)

    async def get_card(self, caller: Caller, card_id: str) -> Card:
        card_key = _parse_id(card_id, "card_id")
        async with self._pool.acquire() as connection:
            card = await self._store.get_card(connection, caller.organization_id, card_key)
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
                connection, org, account_id=account, status=status, after_card_id=after, limit=size + 1
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
            card = await self._store.get_card(connection, org, card_key, lock=True)
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

    async def reveal(self, caller: Caller, card_id: str) -> tuple[Card, RevealedCard]:
        """The number and CVV from the vault, whose access log records the reveal against the caller. Only an
        ACTIVE card reveals; the step-up is enforced by the method's policy."""
        card = await self.get_card(caller, card_id)
        cards.ensure_active(card, self._clock())
        async with transaction(self._pool) as connection:
            # Audited before the secret leaves the vault: a reveal whose reply is lost is still on record.
            await record_audit(
                self._store,
                connection,
                caller,
                method="RevealCard",
                resource_id=str(card.card_id),
                request_id="",
                details={"last_four": card.last_four},
                now=self._clock(),
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
        async with transaction(self._pool) as connection:
            locked = await self._store.get_card(connection, org, card_key, lock=True)
            assert locked is not None
            earlier = await self._store.get_card_payment(connection, org, command.transfer_id)
            booked = locked if earlier is not None else cards.authorize(locked, command.amount_minor, self._clock())
            outcomes = await commit_transfers(connection, self._store, [TransferItem(caller, command)], self._clock)
            outcome = outcomes[0]
            if outcome.error is not None:
                raise outcome.error
            assert outcome.transfer is not None
            if outcome.replayed:
                if earlier is None or earlier[0] != card_key:
                    raise IdempotencyKeyReused("transfer_id", "card_id")
                return outcome.transfer
            await self._store.save_card(connection, booked)
            await self._store.insert_card_payment(
                connection, org, command.transfer_id, card_key, booked.spent_day, command.amount_minor
            )
        return outcome.transfer

    async def finish_payment(
        self, caller: Caller, *, transfer_id: str, request_id: str, capture: bool, amount: Money | None = None
    ) -> Transfer:
        """CaptureCardPayment (post all or part of the hold) and ReleaseCardPayment (void it). What is not
        captured no longer counts against the card's day."""
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
            card_key, authorized_day, authorized_minor = payment
            card = await self._store.get_card(connection, org, card_key, lock=True)
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
            if not outcome.replayed:
                unused = authorized_minor - outcome.transfer.posted_amount_minor
                await self._store.save_card(connection, cards.give_back(card, unused, authorized_day, self._clock()))
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
