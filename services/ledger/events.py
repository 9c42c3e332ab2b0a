"""Ledger events for the outbox: domain facts → ``wallet.ledger.v1`` event messages in the kit's envelope.

Partition key is the debit account for transfer events (so one account's events keep commit order; the relay
publishes in outbox id order), the account for account events, and the tenant for FX rate and sealed-block events.
"""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from services.kit.ids import uuid7
from services.kit.outbox import make_envelope
from services.kit.timestamps import timestamp_from_datetime
from services.ledger.domain_accounts import Account
from services.ledger.domain_cards import Card
from services.ledger.domain_transfers import EntryKind, Transfer
from services.ledger.store_chain import Block, OutboxRow
from services.ledger.store_fx import FxRate
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_events_pb2

LEDGER_EVENTS_STREAM = "wallet.ledger.v1.events"


def _timestamp(moment: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if moment is None else timestamp_from_datetime(moment)


def _facts(transfer: Transfer, debit: Account, credit: Account) -> ledger_events_pb2.TransferFacts:
    return ledger_events_pb2.TransferFacts(
        transfer_id=str(transfer.transfer_id),
        debit_account_id=str(transfer.debit_account_id),
        credit_account_id=str(transfer.credit_account_id),
        debit_customer_id=str(debit.customer_id or ""),
        credit_customer_id=str(credit.customer_id or ""),
        debit_account_kind=int(debit.kind),  # type: ignore[arg-type]
        credit_account_kind=int(credit.kind),  # type: ignore[arg-type]
        amount=money_pb2.Money(currency=transfer.currency, amount_minor=transfer.amount_minor),
        kind=int(transfer.kind),  # type: ignore[arg-type]
        created_by_principal_id=transfer.created_by_principal_id,
        exchange_id=str(transfer.exchange_id or ""),
        batch_id=str(transfer.batch_id or ""),
        reversal_of_transfer_id=str(transfer.reversal_of_transfer_id or ""),
    )


def transfer_event(transfer: Transfer, debit: Account, credit: Account, kind: EntryKind) -> Message:
    facts = _facts(transfer, debit, credit)
    if kind in (EntryKind.POSTED, EntryKind.HOLD_POSTED):
        return ledger_events_pb2.TransferPosted(
            transfer=facts,
            posted_amount=money_pb2.Money(currency=transfer.currency, amount_minor=transfer.posted_amount_minor),
            sequence=transfer.sequence,
            posted_at=_timestamp(transfer.posted_at),
            risk_decision=int(transfer.risk.decision),  # type: ignore[arg-type]
        )
    if kind is EntryKind.PENDING:
        return ledger_events_pb2.TransferPending(
            transfer=facts,
            status=int(transfer.status),  # type: ignore[arg-type]
            hold_expires_at=_timestamp(transfer.hold_expires_at),
            case_id=str(transfer.risk.case_id or ""),
        )
    if kind is EntryKind.VOIDED:
        return ledger_events_pb2.TransferVoided(
            transfer=facts,
            void_reason=int(transfer.void_reason),  # type: ignore[arg-type]
            voided_at=_timestamp(transfer.finalized_at),
        )
    return ledger_events_pb2.TransferExpired(transfer=facts, expired_at=_timestamp(transfer.finalized_at))


def outbox_row(
    organization_id: uuid.UUID,
    partition_key: uuid.UUID,
    payload: Message,
    now: dt.datetime,
    *,
    traceparent: str | None = None,
) -> OutboxRow:
    """The outbox row of one event; ``traceparent`` defaults to the current span's (a group passes it once)."""
    event_id = uuid7()
    envelope = make_envelope(
        event_type_payload=payload,
        organization_id=str(organization_id),
        partition_key=str(partition_key),
        event_id=event_id,
        occurred_at_s=now.timestamp(),
        traceparent=traceparent,
    )
    return OutboxRow(event_id, LEDGER_EVENTS_STREAM, str(partition_key), envelope.SerializeToString())


def account_event(method: str, account: Account, actor_principal_id: str, reason: str = "") -> Message:
    """The event of an account verb (OpenAccount, FreezeAccount, UnfreezeAccount, CloseAccount, UpdateAccountLimits)."""
    account_id, customer_id = str(account.account_id), str(account.customer_id or "")
    if method == "OpenAccount":
        return ledger_events_pb2.AccountOpened(
            account_id=account_id,
            customer_id=customer_id,
            kind=int(account.kind),  # type: ignore[arg-type]
            currency=account.currency,
        )
    if method == "FreezeAccount":
        return ledger_events_pb2.AccountFrozen(
            account_id=account_id, customer_id=customer_id, reason=reason, actor_principal_id=actor_principal_id
        )
    if method == "UnfreezeAccount":
        return ledger_events_pb2.AccountUnfrozen(
            account_id=account_id, customer_id=customer_id, actor_principal_id=actor_principal_id
        )
    if method == "CloseAccount":
        return ledger_events_pb2.AccountClosed(
            account_id=account_id, customer_id=customer_id, actor_principal_id=actor_principal_id
        )
    assert method == "UpdateAccountLimits", method
    message = ledger_events_pb2.AccountLimitsChanged(
        account_id=account_id,
        customer_id=customer_id,
        credit_limit=money_pb2.Money(currency=account.currency, amount_minor=account.credit_limit_minor),
        actor_principal_id=actor_principal_id,
    )
    if account.daily_outflow_limit_minor is not None:
        message.daily_outflow_limit.CopyFrom(
            money_pb2.Money(currency=account.currency, amount_minor=account.daily_outflow_limit_minor)
        )
    return message


def card_revealed_event(card: Card, actor_principal_id: str, device_id: str) -> Message:
    """A RevealCard (partition key: the card's account); the vault's alert consumer texts the card holder."""
    return ledger_events_pb2.CardRevealed(
        card_id=str(card.card_id),
        account_id=str(card.account_id),
        customer_id=str(card.customer_id),
        actor_principal_id=actor_principal_id,
        device_id=device_id,
        last_four=card.last_four,
    )


def fx_rate_event(rate: FxRate) -> Message:
    """A rate set by SetFxRate (partition key: the tenant, so a tenant's rate changes keep their order)."""
    return ledger_events_pb2.FxRateSet(
        base_currency=rate.base_currency,
        quote_currency=rate.quote_currency,
        rate=format(rate.rate.normalize(), "f"),
        actor_principal_id=rate.set_by_principal_id,
    )


def block_sealed_event(block: Block) -> Message:
    """A block the sealer closed (partition key: the tenant), for anchoring Merkle roots elsewhere."""
    return ledger_events_pb2.ChainBlockSealed(
        block_number=block.block_number,
        first_sequence=block.first_sequence,
        last_sequence=block.last_sequence,
        merkle_root=block.merkle_root,
        sealed_at=_timestamp(block.sealed_at),
    )
