"""PayByPhone: pay the default account of the customer who owns a phone number and opted in to being found.

A small orchestration over the normal transfer path: check the payer's side, resolve the number through the contacts
vault (``PayeeDirectory``: ``contacts.ResolvePhone`` with a platform token, on behalf of the payer), pick the payee's
discoverable account in the amount's currency, then commit a ``TRANSFER_KIND_PAY_BY_PHONE`` transfer through the
same risk gate and group commit as ``CreateTransfer`` — idempotent by the request's ``transfer_id`` like any transfer.
The ledger never stores or logs the number; the payer sees the payee only as the vault's masked number.

Enumeration: an unknown number, a hidden one, an erased payee, or a payee without a usable account in the currency
all answer the same ``NOT_FOUND`` ("payee not found"). Everything the ledger can refuse without the payee (bad
input, the payer's account: missing, frozen, wrong currency, not enough funds) is checked *before* the lookup, so it
answers the same for every number. Timing: a miss does the same database read as the replay check of a hit (dummy
work standing in for the commit it cannot make), and every call, hit or miss, success or refusal, returns no sooner
than ``response_floor_s`` after it started, so the commit a hit makes cannot be timed from outside as long as it
fits under the floor. The vault itself makes its own hits and misses cost the same and rate-limits and logs every
lookup against the payer, which bounds what is left (daily limits and the risk gate act only on hits).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from services.kit.errors import FieldViolation, IdempotencyKeyReused, NotFound, Unavailable, invalid
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.caller import Caller
from services.ledger.commit import Clock, Outcome, TransferItem
from services.ledger.domain_accounts import Account, AccountStatus, Money, ensure_usable, validate_money_field
from services.ledger.domain_transfers import Transfer, TransferCommand, TransferKind
from services.ledger.errors import AccountNotFound, CurrencyMismatch, InsufficientFunds
from services.ledger.service import LedgerStore
from services.ledger.service_transfers import PreCommitGate

# Every PayByPhone answer takes at least this long (see the module docstring); above a group commit's p99 here.
RESPONSE_FLOOR_S_DEFAULT = 0.25
PHONE_INPUT_CHARS_MAX = 64


@dataclass(frozen=True, slots=True)
class Payee:
    """What the vault tells the ledger about a number's owner: never the number, only its masked form."""

    customer_id: uuid.UUID
    default_account_id: uuid.UUID | None
    account_ids: tuple[uuid.UUID, ...]
    masked_phone_number: str


class PayeeDirectory(Protocol):
    async def resolve(
        self, organization_id: uuid.UUID, phone_number: str, region_hint: str, on_behalf_of: str
    ) -> Payee | None:
        """The payee, or None for any miss; raises a WalletError for a bad number, a rate limit or an outage."""
        ...


class NoPayeeDirectory:
    """Stands in when the ledger has no platform client for the vault (``LEDGER_CLIENT_ID`` unset): PayByPhone
    answers UNAVAILABLE, the same for every number."""

    async def resolve(
        self, organization_id: uuid.UUID, phone_number: str, region_hint: str, on_behalf_of: str
    ) -> Payee | None:
        raise Unavailable("pay by phone is not configured (the ledger has no platform client for the contacts vault)")


class Committer(Protocol):
    async def submit(self, item: TransferItem) -> Outcome: ...


class PayeeNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("payee not found")


@dataclass(frozen=True, slots=True)
class PayByPhoneRequest:
    transfer_id: str
    debit_account_id: str
    phone_number: str
    region_hint: str
    amount: Money | None
    reference: str


@dataclass(frozen=True, slots=True)
class PaidByPhone:
    transfer: Transfer
    # Empty for a replay whose payee has since hidden their number (the transfer itself is still returned).
    masked_phone_number: str


@dataclass(frozen=True, slots=True)
class _Checked:
    transfer_id: uuid.UUID
    debit_account_id: uuid.UUID
    amount: Money


class PayByPhoneService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: LedgerStore,
        clock: Clock,
        committer: Committer,
        gate: PreCommitGate,
        directory: PayeeDirectory,
        *,
        response_floor_s: float = RESPONSE_FLOOR_S_DEFAULT,
        monotonic_s: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        assert response_floor_s >= 0
        self._pool = pool
        self._store = store
        self._clock = clock
        self._committer = committer
        self._gate = gate
        self._directory = directory
        self._response_floor_s = response_floor_s
        self._monotonic_s = monotonic_s
        self._sleep = sleep

    async def pay_by_phone(self, caller: Caller, request: PayByPhoneRequest) -> PaidByPhone:
        started_s = self._monotonic_s()
        try:
            checked = _validate(request)
            await self._check_payer_side(caller, checked)
            payee = await self._directory.resolve(
                caller.organization_id, request.phone_number, request.region_hint, caller.principal_id
            )
            credit = await self._payee_account(caller, payee, checked.amount.currency)
            if payee is None or credit is None:
                return await self._miss(caller, checked)
            command = TransferCommand(
                transfer_id=checked.transfer_id,
                debit_account_id=checked.debit_account_id,
                credit_account_id=credit.account_id,
                currency=checked.amount.currency,
                amount_minor=checked.amount.amount_minor,
                pending=False,
                hold_timeout_ms=0,
                reference=request.reference,
                kind=TransferKind.PAY_BY_PHONE,
            )
            command = await self._gate.before_commit(caller, command)
            outcome = await self._committer.submit(TransferItem(caller, command))
            if isinstance(outcome.error, IdempotencyKeyReused):
                # A replay after the payee moved their default account: the first payment stands.
                replayed = await self._replay(caller, checked)
                if replayed is not None:
                    return PaidByPhone(replayed, payee.masked_phone_number)
            if outcome.error is not None:
                raise outcome.error
            assert outcome.transfer is not None
            return PaidByPhone(outcome.transfer, payee.masked_phone_number)
        finally:
            # Hit or miss, success or refusal: no answer before the floor (timing must not tell them apart).
            remaining_s = self._response_floor_s - (self._monotonic_s() - started_s)
            if remaining_s > 0:
                await self._sleep(remaining_s)

    async def _check_payer_side(self, caller: Caller, checked: _Checked) -> None:
        """Refusals that do not depend on the payee, made before the lookup so they answer alike for any number."""
        async with self._pool.acquire() as connection:
            debit = await self._store.get_account(connection, caller.organization_id, checked.debit_account_id)
        if debit is None or not caller.may_see(debit.customer_id):
            raise AccountNotFound("debit_account_id")
        ensure_usable(debit)
        if debit.currency != checked.amount.currency:
            raise CurrencyMismatch("amount.currency", debit.currency)
        if debit.available_minor() < checked.amount.amount_minor:
            raise InsufficientFunds(str(debit.account_id), debit.available_minor())

    async def _payee_account(self, caller: Caller, payee: Payee | None, currency: str) -> Account | None:
        """The payee's default account if it is in the currency, else their first discoverable one that is: it
        must belong to the payee in this tenant and be active (the vault does not check account ids)."""
        if payee is None:
            return None
        candidates = [payee.default_account_id, *payee.account_ids]
        async with self._pool.acquire() as connection:
            for account_id in dict.fromkeys(a for a in candidates if a is not None):
                account = await self._store.get_account(connection, caller.organization_id, account_id)
                if account is None or account.customer_id != payee.customer_id:
                    continue
                if account.currency == currency and account.status is AccountStatus.ACTIVE:
                    return account
        return None

    async def _miss(self, caller: Caller, checked: _Checked) -> PaidByPhone:
        """Every miss: the same NOT_FOUND — unless the caller is replaying its own PayByPhone whose payee hid their
        number since, which returns the transfer made then. The read is also the miss's dummy work."""
        replayed = await self._replay(caller, checked)
        if replayed is not None:
            return PaidByPhone(replayed, "")
        raise PayeeNotFound()

    async def _replay(self, caller: Caller, checked: _Checked) -> Transfer | None:
        """The caller's own earlier PayByPhone with this transfer id and the same payer side, if there is one."""
        async with self._pool.acquire() as connection:
            existing = await self._store.get_transfer(connection, caller.organization_id, checked.transfer_id)
        if existing is None or existing.created_by_principal_id != caller.principal_id:
            return None
        return existing if _same_payment(existing, checked) else None


def _same_payment(existing: Transfer, checked: _Checked) -> bool:
    return (
        existing.kind is TransferKind.PAY_BY_PHONE
        and existing.debit_account_id == checked.debit_account_id
        and existing.currency == checked.amount.currency
        and existing.amount_minor == checked.amount.amount_minor
    )


def _validate(request: PayByPhoneRequest) -> _Checked:
    violations: list[FieldViolation] = []
    transfer_id = parse_uuid(request.transfer_id, "transfer_id", violations)
    debit_account_id = parse_uuid(request.debit_account_id, "debit_account_id", violations)
    if request.amount is None:
        violations.append(FieldViolation("amount", "is required"))
    else:
        validate_money_field(
            "amount", request.amount.currency, request.amount.amount_minor, violations, positive=True
        )
    if not request.phone_number.strip():
        violations.append(FieldViolation("phone_number", "is required"))
    elif len(request.phone_number) > PHONE_INPUT_CHARS_MAX:
        violations.append(FieldViolation("phone_number", f"must be at most {PHONE_INPUT_CHARS_MAX} characters"))
    if len(request.reference) > limits.REFERENCE_CHARS_MAX:
        violations.append(FieldViolation("reference", f"must be at most {limits.REFERENCE_CHARS_MAX} characters"))
    if violations:
        raise invalid(violations)
    assert transfer_id is not None
    assert debit_account_id is not None
    assert request.amount is not None
    return _Checked(transfer_id, debit_account_id, request.amount)
