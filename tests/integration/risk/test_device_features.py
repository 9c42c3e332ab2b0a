"""Device features from the auth event stream, against a real risk server and Redis: auth's NewDeviceLogin /
LoginSucceeded events (the envelopes auth's outbox relays) reach risk's device consumer, which records when each
principal was first seen on a device; Assess then has ``device.is_new`` / ``device.age_hours``, and the default
rule NEW_DEVICE_HIGH_AMOUNT challenges a large payment from a device first seen less than 24 h ago (or never)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from google.protobuf.message import Message

from services.kit.outbox import STREAM_ENTRY_FIELD, make_envelope
from services.kit.stream_consumer import StreamConsumer
from services.risk.device_consumer import device_consumer
from services.risk.feature_windows import KEYS
from tests.integration.auth.conftest import OWNER_PASSWORD, RunningAuth, sign_up
from tests.integration.auth.conftest import auth as auth
from tests.integration.risk.test_assess import _id, assess, context
from wallet.auth.v1 import auth_events_pb2, auth_sessions_pb2
from wallet.risk.v1 import risk_assessments_pb2

pytestmark = pytest.mark.integration
CHALLENGE = risk_assessments_pb2.DECISION_CHALLENGE
HOUR_S = 3600
AUTH_STREAM = "wallet.auth.v1.events"
RELAY_ROUNDS_MAX = 80


async def _consumer(risk_stack: Any) -> tuple[StreamConsumer, str]:
    stream = f"test.auth.events.{uuid.uuid4().hex[:8]}"
    consumer = device_consumer(
        risk_stack.redis, risk_stack.app.windows, stream=stream, group="risk-devices", claim_idle_ms=60_000
    )
    await consumer.ensure_group()
    return consumer, stream


async def _publish(risk_stack: Any, stream: str, org: str, payload: Message, occurred_at_s: float) -> str:
    envelope = make_envelope(
        event_type_payload=payload, organization_id=org, partition_key=org, occurred_at_s=occurred_at_s
    )
    await risk_stack.redis.xadd(stream, {STREAM_ENTRY_FIELD: envelope.SerializeToString()})
    return envelope.event_id


def _new_device_login(principal_id: str, device_id: str) -> auth_events_pb2.NewDeviceLogin:
    return auth_events_pb2.NewDeviceLogin(
        principal_id=principal_id,
        session_id=_id(),
        source=auth_events_pb2.EventSource(device_id=device_id, source_ip="203.0.113.9"),
    )


async def _assess_from(risk_stack: Any, org: str, principal_id: str, device_id: str) -> Any:
    account, payee = _id(), _id()
    # A known payee, so only the device can make the payment stand out.
    await risk_stack.publish_posted(org, debit=account, credit=payee, amount_minor=5_000)
    await risk_stack.consume_all()
    return await assess(
        risk_stack, org, context(account, payee, 150_000, device_id=device_id, principal_id=principal_id)
    )


async def test_a_new_device_event_reaching_risk_changes_the_assessment(risk_stack: Any) -> None:
    consumer, stream = await _consumer(risk_stack)
    org, principal, device = _id(), _id(), _id()
    never_seen = await _assess_from(risk_stack, org, principal, device)
    assert never_seen.decision == CHALLENGE
    assert "NEW_DEVICE_HIGH_AMOUNT" in never_seen.reason_codes
    # Auth saw the principal sign in on this phone two days ago.
    await _publish(risk_stack, stream, org, _new_device_login(principal, device), time.time() - 48 * HOUR_S)
    assert await consumer.consume_once(block_ms=None) == 1
    known = await _assess_from(risk_stack, org, principal, device)
    assert "NEW_DEVICE_HIGH_AMOUNT" not in known.reason_codes
    assert known.decision != CHALLENGE
    # The device is not "known" for another principal of the tenant.
    stranger = await _assess_from(risk_stack, org, _id(), device)
    assert "NEW_DEVICE_HIGH_AMOUNT" in stranger.reason_codes
    # A small payment from a new device is not challenged for it.
    account, payee = _id(), _id()
    small = await assess(risk_stack, org, context(account, payee, 900, device_id=_id(), principal_id=principal))
    assert "NEW_DEVICE_HIGH_AMOUNT" not in small.reason_codes


async def test_a_device_first_seen_an_hour_ago_is_still_new(risk_stack: Any) -> None:
    consumer, stream = await _consumer(risk_stack)
    org, principal, device = _id(), _id(), _id()
    succeeded = auth_events_pb2.LoginSucceeded(
        principal_id=principal, session_id=_id(), source=auth_events_pb2.EventSource(device_id=device)
    )
    await _publish(risk_stack, stream, org, succeeded, time.time() - HOUR_S)
    assert await consumer.consume_once(block_ms=None) == 1
    recent = await _assess_from(risk_stack, org, principal, device)
    assert "NEW_DEVICE_HIGH_AMOUNT" in recent.reason_codes
    features = await risk_stack.stub.GetFeatures(
        risk_assessments_pb2.GetFeaturesRequest(account_id=_id(), device_id=device),
        metadata=risk_stack.auth(risk_stack.tokens.member(org, "auditor")),
    )
    values = {feature.name: feature for feature in features.features}
    assert values["device.is_new"].boolean_value is True
    assert values["device.age_hours"].integer_value == 1


async def test_redelivered_and_late_events_keep_the_earliest_sighting(risk_stack: Any) -> None:
    consumer, stream = await _consumer(risk_stack)
    org, principal, device = _id(), _id(), _id()
    first_s = int(time.time()) - 72 * HOUR_S
    event = _new_device_login(principal, device)
    await _publish(risk_stack, stream, org, event, first_s)
    await _publish(risk_stack, stream, org, event, first_s + HOUR_S)  # a later sighting of the same device
    await _publish(risk_stack, stream, org, event, first_s)  # the relay published it twice
    unrelated = auth_events_pb2.PasswordChanged(principal_id=principal)
    await _publish(risk_stack, stream, org, unrelated, first_s)
    assert await consumer.consume_once(block_ms=None) == 4
    stored = await risk_stack.redis.hget(KEYS.key("d", org, device), f"seen.{principal}")
    assert int(stored) == first_s
    assert await risk_stack.redis.ttl(KEYS.key("d", org, device)) > 0


async def test_a_real_sign_in_on_auth_reaches_risk_through_the_stream(risk_stack: Any, auth: RunningAuth) -> None:
    """The whole path: auth's Login from a new installation → NewDeviceLogin in auth's outbox → relayed to
    ``wallet.auth.v1.events`` → risk's device consumer → Assess. Auth's clock is set two days back for the sign-in,
    so the device is no longer new once the event has arrived."""
    group = f"risk-devices-{uuid.uuid4().hex[:8]}"
    consumer = device_consumer(
        risk_stack.redis, risk_stack.app.windows, stream=AUTH_STREAM, group=group, claim_idle_ms=60_000
    )
    # Only what is published from now on (the test Redis's stream holds every other test's events too).
    await risk_stack.redis.xgroup_create(AUTH_STREAM, group, id="$", mkstream=True)
    tenant = await sign_up(auth.stub)
    device = _id()
    before = await _assess_from(risk_stack, tenant.organization_id, tenant.owner_id, device)
    assert "NEW_DEVICE_HIGH_AMOUNT" in before.reason_codes
    auth.clock.offset_s = -48 * HOUR_S
    try:
        await auth.stub.Login(
            auth_sessions_pb2.LoginRequest(
                organization_slug=tenant.slug, login=tenant.owner_email, password=OWNER_PASSWORD, device_id=device
            )
        )
    finally:
        auth.clock.offset_s = 0.0
    seen_key = KEYS.key("d", tenant.organization_id, device)
    for _ in range(RELAY_ROUNDS_MAX):  # the relay publishes asynchronously; bounded, never a timed assertion
        await consumer.consume_once(block_ms=250)
        if await risk_stack.redis.hget(seen_key, f"seen.{tenant.owner_id}") is not None:
            break
    after = await _assess_from(risk_stack, tenant.organization_id, tenant.owner_id, device)
    assert "NEW_DEVICE_HIGH_AMOUNT" not in after.reason_codes
