"""The auth event consumer: reads ``wallet.auth.v1.events`` in its own consumer group (the kit's ``StreamConsumer``)
and keeps, per device, when each principal was first seen on it — the ``device.is_new`` and ``device.age_hours``
features Assess reads. Sign-ins (``LoginSucceeded``, ``NewDeviceLogin``) and ``DeviceRegistered`` all count as
"seen": a device known before risk consumed the stream gets its first-seen time from its next sign-in.

At least once in, idempotent out: the stored time is the earliest ever delivered, so a redelivered or reordered
event changes nothing. Other event types are acknowledged and ignored."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as redis_asyncio
from prometheus_client import Counter

from services.kit.stream_consumer import ConsumerSettings, StreamConsumer
from services.risk.feature_windows import FeatureWindows
from wallet.auth.v1 import auth_events_pb2
from wallet.common.v1 import events_pb2

log = logging.getLogger(__name__)

DEVICES_SEEN = Counter(
    "wallet_risk_device_sightings_total", "Auth events that recorded a principal seen on a device.", ["event_type"]
)
NEW_DEVICE_LOGIN = auth_events_pb2.NewDeviceLogin.DESCRIPTOR.full_name
LOGIN_SUCCEEDED = auth_events_pb2.LoginSucceeded.DESCRIPTOR.full_name
DEVICE_REGISTERED = auth_events_pb2.DeviceRegistered.DESCRIPTOR.full_name
# Installation ids longer than this are not recorded (auth bounds them much lower; a key stays small).
DEVICE_ID_LENGTH_MAX = 128


@dataclass(frozen=True, slots=True)
class DeviceSighting:
    organization_id: str
    principal_id: str
    device_id: str
    seen_at_s: float


def sighting_of(envelope: events_pb2.EventEnvelope) -> DeviceSighting | None:
    """The (principal, device, time) an auth event shows; None for events that name no device."""
    if envelope.event_type == NEW_DEVICE_LOGIN:
        login = auth_events_pb2.NewDeviceLogin()
        envelope.payload.Unpack(login)
        principal_id, device_id = login.principal_id, login.source.device_id
    elif envelope.event_type == LOGIN_SUCCEEDED:
        succeeded = auth_events_pb2.LoginSucceeded()
        envelope.payload.Unpack(succeeded)
        principal_id, device_id = succeeded.principal_id, succeeded.source.device_id
    elif envelope.event_type == DEVICE_REGISTERED:
        registered = auth_events_pb2.DeviceRegistered()
        envelope.payload.Unpack(registered)
        principal_id, device_id = registered.principal_id, registered.device_id
    else:
        return None
    if not (envelope.organization_id and principal_id and device_id) or len(device_id) > DEVICE_ID_LENGTH_MAX:
        return None
    seen_at_s = envelope.occurred_at.ToNanoseconds() / 1e9
    return DeviceSighting(envelope.organization_id, principal_id, device_id, seen_at_s)


def device_consumer(
    redis: redis_asyncio.Redis, windows: FeatureWindows, *, stream: str, group: str, claim_idle_ms: int
) -> StreamConsumer:
    """A new group starts at the stream's beginning ("0"): the retained history gives known devices their
    first-seen times (replays are harmless, the earliest time wins)."""

    async def handle(envelope: events_pb2.EventEnvelope) -> None:
        sighting = sighting_of(envelope)
        if sighting is None:
            return
        await windows.record_device_seen(
            sighting.organization_id, sighting.principal_id, sighting.device_id, sighting.seen_at_s
        )
        DEVICES_SEEN.labels(envelope.event_type.rpartition(".")[2]).inc()

    settings = ConsumerSettings(stream=stream, group=group, start_id="0", claim_idle_ms=claim_idle_ms)
    return StreamConsumer(redis, settings, handle, retryable=(OSError, redis_asyncio.RedisError))
