"""Virtual cards, continued (the same two real services as ``test_cards.py``): UpdateCardLimits (idempotent,
audited, customers only tighten, ACTIVE or FROZEN cards only, other tenants NOT_FOUND); the card's day counting
only captured and still-open authorizations, whichever way a hold ends (release, void, the expiry sweeper); the
reveal's alert texted to the holder once through the vault's consumer though the event is delivered twice; the
card payment's transfer naming its card."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import grpc
import pytest
import redis.asyncio as redis_asyncio
from google.protobuf import duration_pb2, field_mask_pb2

from services.contacts.alert_consumers import alert_consumers
from services.kit.outbox import STREAM_ENTRY_FIELD
from services.kit.status import ErrorDetails
from tests.integration.contacts.conftest import Vault
from tests.integration.contacts.test_contacts import store_request
from tests.integration.contacts.test_subjects_and_secrets import outbox
from tests.integration.ledger.conftest import LedgerHarness
from tests.integration.ledger.test_cards import Holder, _error, _eur, ledger, vault
from wallet.common.v1 import events_pb2
from wallet.ledger.v1 import ledger_cards_pb2 as pb
from wallet.ledger.v1 import ledger_events_pb2
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb
from wallet.ledger.v1 import ledger_transfers_pb2 as transfers_pb

pytestmark = pytest.mark.integration
__all__ = ["ledger", "vault"]  # the module-scoped fixtures, shared with test_cards.py's helpers

PER_TRANSACTION = "limits.per_transaction_limit"
DAILY = "limits.daily_limit"


def _update(card_id: str, *paths: str, request_id: str | None = None, **limits: int) -> pb.UpdateCardLimitsRequest:
    return pb.UpdateCardLimitsRequest(
        card_id=card_id,
        update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
        limits=pb.CardLimits(**{name: _eur(value) for name, value in limits.items()}),
        request_id=request_id or str(uuid.uuid4()),
    )


async def _spent(holder: Holder, card_id: str) -> int:
    card = (await holder.ledger.stub.GetCard(pb.GetCardRequest(card_id=card_id), metadata=holder.auth())).card
    amount: int = card.daily_spent.amount_minor
    return amount


async def test_update_card_limits_is_idempotent_audited_and_enforced(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue(per_transaction_limit=5_000, daily_limit=8_000)
    request = _update(card.card_id, DAILY, daily_limit=3_000)
    lowered = (await ledger.stub.UpdateCardLimits(request, metadata=holder.auth())).card
    assert lowered.limits.daily_limit.amount_minor == 3_000
    assert lowered.limits.per_transaction_limit.amount_minor == 5_000  # not in the mask: kept
    assert (await ledger.stub.UpdateCardLimits(request, metadata=holder.auth())).card == lowered  # replay
    request.limits.daily_limit.amount_minor = 2_000
    reused = await _error(ledger.stub.UpdateCardLimits(request, metadata=holder.auth()))
    assert reused.code == grpc.StatusCode.ALREADY_EXISTS
    assert (reused.reason, reused.metadata["field"]) == ("IDEMPOTENCY_KEY_REUSED", "limits")
    # The new limit holds in the commit.
    over = await _error(holder.authorize(card.card_id, 3_001))
    assert (over.reason, over.metadata["limit"]) == ("CARD_LIMIT_EXCEEDED", "daily")
    await holder.authorize(card.card_id, 3_000)
    # A customer only tightens: raising or removing a limit is the tenant staff's.
    for raising in (_update(card.card_id, DAILY, daily_limit=3_001), _update(card.card_id, PER_TRANSACTION)):
        refused = await _error(ledger.stub.UpdateCardLimits(raising, metadata=holder.auth()))
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    removed = await ledger.stub.UpdateCardLimits(_update(card.card_id, PER_TRANSACTION), metadata=ledger.auth())
    assert not removed.card.limits.HasField("per_transaction_limit")
    audit = await ledger.stub.ListAuditEvents(
        integrity_pb.ListAuditEventsRequest(resource_id=card.card_id), metadata=ledger.auth()
    )
    changes = [e for e in audit.audit_events if e.method.endswith("UpdateCardLimits")]
    assert len(changes) == 2  # the replay wrote nothing
    actors = [e.actor_principal_id for e in changes]
    assert holder.customer in actors
    assert len(set(actors)) == 2  # the customer's change and the staff member's
    first = next(e for e in changes if e.actor_principal_id == holder.customer)
    assert (first.details["old_daily_limit_minor"], first.details["new_daily_limit_minor"]) == ("8000", "3000")


async def test_update_card_limits_refusals(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue(daily_limit=8_000)
    bad_mask = await _error(ledger.stub.UpdateCardLimits(_update(card.card_id, "label"), metadata=holder.auth()))
    assert bad_mask.code == grpc.StatusCode.INVALID_ARGUMENT
    empty_mask = await _error(ledger.stub.UpdateCardLimits(_update(card.card_id), metadata=holder.auth()))
    assert empty_mask.code == grpc.StatusCode.INVALID_ARGUMENT
    zero = await _error(
        ledger.stub.UpdateCardLimits(_update(card.card_id, DAILY, daily_limit=0), metadata=holder.auth())
    )
    assert zero.code == grpc.StatusCode.INVALID_ARGUMENT
    other_currency = _update(card.card_id, DAILY, daily_limit=100)
    other_currency.limits.daily_limit.currency = "USD"
    mismatch = await _error(ledger.stub.UpdateCardLimits(other_currency, metadata=holder.auth()))
    assert mismatch.code == grpc.StatusCode.INVALID_ARGUMENT
    stranger = await _error(
        ledger.stub.UpdateCardLimits(_update(card.card_id, DAILY, daily_limit=1), metadata=Holder(ledger).auth())
    )
    assert stranger.code == grpc.StatusCode.NOT_FOUND
    other_tenant = await _error(
        ledger.stub.UpdateCardLimits(
            _update(card.card_id, DAILY, daily_limit=1), metadata=ledger.auth(org=str(uuid.uuid4()))
        )
    )
    assert other_tenant.code == grpc.StatusCode.NOT_FOUND
    await holder.status("FreezeCard", card.card_id)
    frozen = await ledger.stub.UpdateCardLimits(_update(card.card_id, DAILY, daily_limit=100), metadata=holder.auth())
    assert frozen.card.limits.daily_limit.amount_minor == 100
    await holder.status("CloseCard", card.card_id)
    closed = await _error(
        ledger.stub.UpdateCardLimits(_update(card.card_id, DAILY, daily_limit=50), metadata=holder.auth())
    )
    assert (closed.code, closed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CARD_NOT_ACTIVE")


async def test_the_day_counts_only_captured_and_open_authorizations_however_a_hold_ends(
    ledger: LedgerHarness,
) -> None:
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue(daily_limit=10_000)
    expiring_id = str(uuid.uuid4())
    await ledger.stub.AuthorizeCardPayment(
        pb.AuthorizeCardPaymentRequest(
            transfer_id=expiring_id,
            card_id=card.card_id,
            merchant_account_id=holder.merchant,
            amount=_eur(4_000),
            hold_timeout=duration_pb2.Duration(seconds=60),
        ),
        metadata=holder.processor(),
    )
    voided = await holder.authorize(card.card_id, 3_000)
    captured = await holder.authorize(card.card_id, 3_000)
    assert await _spent(holder, card.card_id) == 10_000
    assert (await _error(holder.authorize(card.card_id, 1))).reason == "CARD_LIMIT_EXCEEDED"
    # Captured in part: only the captured part keeps counting.
    await ledger.stub.CaptureCardPayment(
        pb.CaptureCardPaymentRequest(
            transfer_id=captured.transfer.transfer_id, amount=_eur(1_000), request_id=str(uuid.uuid4())
        ),
        metadata=holder.processor(),
    )
    assert await _spent(holder, card.card_id) == 8_000
    # Voided through the generic verb, not ReleaseCardPayment: it stops counting all the same.
    await ledger.stub.VoidPendingTransfer(
        transfers_pb.VoidPendingTransferRequest(
            transfer_id=voided.transfer.transfer_id, request_id=str(uuid.uuid4())
        ),
        metadata=ledger.auth(),
    )
    assert await _spent(holder, card.card_id) == 5_000
    # The expiry sweeper's hold: once expired, its amount is free again.
    await ledger.app.transfers.expire_due_holds(ledger.app.clock() + dt.timedelta(minutes=5))
    expired = await ledger.stub.GetTransfer(
        transfers_pb.GetTransferRequest(transfer_id=expiring_id), metadata=holder.auth()
    )
    assert expired.transfer.status == transfers_pb.TRANSFER_STATUS_EXPIRED
    assert await _spent(holder, card.card_id) == 1_000
    await holder.authorize(card.card_id, 9_000)
    assert await _spent(holder, card.card_id) == 10_000
    assert (await _error(holder.authorize(card.card_id, 1))).reason == "CARD_LIMIT_EXCEEDED"


async def test_a_card_payment_transfer_names_its_card(ledger: LedgerHarness) -> None:
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue()
    paid = await holder.authorize(card.card_id, 100)
    read = await ledger.stub.GetTransfer(
        transfers_pb.GetTransferRequest(transfer_id=paid.transfer.transfer_id), metadata=holder.auth()
    )
    assert read.transfer.card_id == card.card_id
    assert read.transfer.invoice_id == ""
    listed = await ledger.stub.ListTransfers(
        transfers_pb.ListTransfersRequest(account_id=holder.wallet), metadata=holder.auth()
    )
    by_id = {t.transfer_id: t for t in listed.transfers}
    assert by_id[paid.transfer.transfer_id].card_id == card.card_id


async def _card_revealed_envelope(database_url: str, card_id: str) -> bytes:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT envelope FROM outbox ORDER BY id")
    finally:
        await connection.close()
    found: list[bytes] = []
    for row in rows:
        envelope = events_pb2.EventEnvelope.FromString(row["envelope"])
        revealed = ledger_events_pb2.CardRevealed()
        if envelope.payload.Unpack(revealed) and revealed.card_id == card_id:
            found.append(bytes(row["envelope"]))
    assert len(found) == 1, "one RevealCard, one CardRevealed event"
    return found[0]


async def test_a_reveal_texts_the_holder_once_though_its_event_is_delivered_twice(
    ledger: LedgerHarness, vault: Vault, redis_client: redis_asyncio.Redis
) -> None:
    holder = Holder(ledger)
    await holder.setup()
    await vault.stub.StoreContact(
        store_request("+86 139 4444 0101", ""),
        metadata=vault.token(org=ledger.organization_id, sub=holder.customer, pty="customer", roles=["customer"]),
    )
    card = await holder.issue()
    await holder.reveal(card.card_id)
    stream = f"test.cards.events.{uuid.uuid4().hex[:8]}"
    assert vault.app.vault is not None
    consumer, _ = alert_consumers(
        redis_client, vault.app.vault.alerts, ledger_stream=stream, auth_stream=stream + ".auth", start_id="0"
    )
    try:
        await consumer.ensure_group()
        envelope = await _card_revealed_envelope(ledger.database_url, card.card_id)
        for _ in range(2):  # the relay publishes at least once
            await redis_client.xadd(stream, {STREAM_ENTRY_FIELD: envelope})
        assert await consumer.consume_once() == 2
    finally:
        await redis_client.delete(stream, stream + ".auth")
    texts = [m["body"] for m in outbox(vault) if m["to"] == "+8613944440101"]
    assert len(texts) == 1
    assert texts[0].startswith(f"Wallet: the number of card ending {card.last_four} was shown at ")


async def test_concurrent_authorizations_never_exceed_the_daily_limit(ledger: LedgerHarness) -> None:
    # The card's row lock serializes them; each reads the day's spending after taking it, so it sees the holds the
    # authorizations before it committed (reading it in the locking statement would not).
    holder = Holder(ledger)
    await holder.setup()
    card = await holder.issue(daily_limit=5_000)
    results = await asyncio.gather(
        *(holder.authorize(card.card_id, 1_000) for _ in range(12)), return_exceptions=True
    )
    accepted = [r for r in results if isinstance(r, pb.AuthorizeCardPaymentResponse)]
    declined = [ErrorDetails.from_rpc_error(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(accepted) == 5
    assert len(declined) == 7
    assert {d.reason for d in declined} == {"CARD_LIMIT_EXCEEDED"}
    assert await _spent(holder, card.card_id) == 5_000
