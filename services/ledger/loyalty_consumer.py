"""The loyalty job: consumes the ledger's own event stream (``wallet.ledger.v1.events``) in the consumer group
``ledger-loyalty`` and awards the points each posted customer spend earns. At least once in; exactly once out,
because an award's transfer id derives from the event id (see ``domain_loyalty``)."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import redis.asyncio as redis_asyncio

from services.kit.stream_consumer import ConsumerSettings, StreamConsumer
from services.ledger.domain_loyalty import PostedSpend
from services.ledger.domain_transfers import TransferKind
from services.ledger.events import LEDGER_EVENTS_STREAM
from services.ledger.service_loyalty import LoyaltyService
from wallet.common.v1 import events_pb2
from wallet.ledger.v1 import ledger_events_pb2

log = logging.getLogger(__name__)

LOYALTY_CONSUMER_GROUP = "ledger-loyalty"
_POSTED = ledger_events_pb2.TransferPosted.DESCRIPTOR.full_name


def posted_spend(envelope: events_pb2.EventEnvelope) -> PostedSpend | None:
    """The customer spend a TransferPosted event records; None for other events and for transfers that debit no
    customer's account."""
    if envelope.event_type != _POSTED:
        return None
    posted = ledger_events_pb2.TransferPosted()
    envelope.payload.Unpack(posted)
    facts = posted.transfer
    if not facts.debit_customer_id:
        return None
    amount = posted.posted_amount if posted.HasField("posted_amount") else facts.amount
    try:
        return PostedSpend(
            organization_id=uuid.UUID(envelope.organization_id),
            event_id=uuid.UUID(envelope.event_id),
            transfer_id=uuid.UUID(facts.transfer_id),
            customer_id=uuid.UUID(facts.debit_customer_id),
            kind=TransferKind(facts.kind),
            currency=amount.currency,
            posted_minor=amount.amount_minor,
        )
    except ValueError:
        # A malformed id or a transfer kind newer than this build: no delivery could award anything for it.
        log.warning("loyalty skipped an unreadable TransferPosted event", extra={"fields": {"event_type": _POSTED}})
        return None


def loyalty_consumer(
    redis: redis_asyncio.Redis,
    service: LoyaltyService,
    *,
    group: str = LOYALTY_CONSUMER_GROUP,
    stream: str = LEDGER_EVENTS_STREAM,
) -> StreamConsumer:
    async def handle(envelope: events_pb2.EventEnvelope) -> None:
        spend = posted_spend(envelope)
        if spend is not None:
            await service.award(spend)

    # A new group starts at the stream's end: transfers posted before loyalty was switched on earn nothing.
    settings = ConsumerSettings(stream=stream, group=group, start_id="$")
    return StreamConsumer(redis, settings, handle, retryable=(OSError, asyncpg.PostgresError, asyncpg.InterfaceError))
