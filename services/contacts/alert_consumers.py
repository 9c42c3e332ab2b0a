"""The vault's alert consumers: ``wallet.ledger.v1.events`` (transaction alerts) and ``wallet.auth.v1.events``
(lockout and new-device alerts), each in its own consumer group, through the kit's ``StreamConsumer``.

At least once in, at most once out: a redelivered event maps onto the notifications already recorded for it (the
notification ids derive from the event id, see ``domain_alerts.py``). A new group starts at the stream's end, so
events published before the vault first consumed them alert no one (no flood of old alerts on first start).
"""

from __future__ import annotations

import asyncpg
import redis.asyncio as redis_asyncio

from services.contacts.alert_events import AlertNotDelivered, on_auth_event, on_ledger_event
from services.contacts.config import AUTH_EVENTS_STREAM, LEDGER_EVENTS_STREAM
from services.contacts.service_alerts import AlertService
from services.kit.stream_consumer import ConsumerSettings, StreamConsumer
from wallet.common.v1 import events_pb2

TRANSACTION_ALERTS_GROUP = "contacts-transaction-alerts"
SECURITY_ALERTS_GROUP = "contacts-security-alerts"
# "Try again later" errors: the database or the SMS provider is down. Anything else is a bug, logged loudly.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    AlertNotDelivered,
)


def alert_consumers(
    redis: redis_asyncio.Redis,
    alerts: AlertService,
    *,
    ledger_stream: str = LEDGER_EVENTS_STREAM,
    auth_stream: str = AUTH_EVENTS_STREAM,
    start_id: str = "$",
) -> list[StreamConsumer]:
    async def ledger_event(envelope: events_pb2.EventEnvelope) -> None:
        await on_ledger_event(alerts, envelope)

    async def auth_event(envelope: events_pb2.EventEnvelope) -> None:
        await on_auth_event(alerts, envelope)

    return [
        StreamConsumer(
            redis,
            ConsumerSettings(stream=ledger_stream, group=TRANSACTION_ALERTS_GROUP, start_id=start_id),
            ledger_event,
            retryable=RETRYABLE_ERRORS,
        ),
        StreamConsumer(
            redis,
            ConsumerSettings(stream=auth_stream, group=SECURITY_ALERTS_GROUP, start_id=start_id),
            auth_event,
            retryable=RETRYABLE_ERRORS,
        ),
    ]
