"""Member mail against a real auth server (Postgres, Redis, the outbox relay): an admin's ResetMemberDevices and a
member's new-device sign-ins reach the member-mail job through auth's own event stream and land in the mail sink
file once each — one notice for a reset of two devices, nothing more when the events are delivered again — while a
customer's events mail no one, and the members' addresses appear in no log, span or Redis key or value."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import any_pb2, timestamp_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.auth.audit import STREAM
from services.auth.member_mail_job import member_mail_consumer
from services.auth.service_member_mail import MailOutcome
from services.kit.jsonl_outbox import JsonLinesOutbox
from services.kit.outbox import decode_entry
from services.kit.stream_consumer import StreamConsumer
from tests.integration.auth.conftest import (
    RunningAuth,
    Tenant,
    auth_env,
    bearer,
    create_database,
    drop_database,
    sign_up,
    start_auth,
)
from tests.integration.auth.test_devices import _register
from tests.integration.auth.test_members_and_customers import MEMBER_PASSWORD, invite_and_accept, step_up_owner
from wallet.auth.v1 import auth_customers_pb2, auth_events_pb2, auth_identity_pb2, auth_members_pb2, auth_sessions_pb2
from wallet.common.v1 import events_pb2

pytestmark = pytest.mark.integration
CONSUME_ROUNDS_MAX = 100
CONSUME_BLOCK_MS = 100
RESET_SUBJECT = "Your devices and passkeys were reset"
NEW_SIGN_IN_SUBJECT = "New sign-in to your account"


@pytest.fixture
async def auth(postgres_server_url: str, redis_server_url: str, tmp_path: Path) -> AsyncIterator[RunningAuth]:
    """A server whose own member-mail job is off: the test drives a consumer of its own, one batch at a time."""
    database_url = await create_database(postgres_server_url)
    env = auth_env(AUTH_MEMBER_MAIL="false", AUTH_MAIL_OUTBOX=str(tmp_path / "mail" / "outbox.jsonl"))
    running = await start_auth(database_url, redis_server_url, env)
    try:
        yield running
    finally:
        await running.channel.close()
        await running.server.stop()
        await drop_database(postgres_server_url, database_url)


def outbox(auth: RunningAuth) -> JsonLinesOutbox:
    settings_path = auth.app.settings.mail_outbox
    assert settings_path is not None
    return JsonLinesOutbox(settings_path)


def mails_to(auth: RunningAuth, address: str) -> list[str]:
    return [mail["subject"] for mail in outbox(auth).read() if mail["to"] == address]


async def consume_until(consumer: StreamConsumer, done: Any) -> None:
    """Handles batches until ``done()`` (the relay publishes in the background); bounded."""
    for _ in range(CONSUME_ROUNDS_MAX):
        if await done():
            return
        await consumer.consume_once(block_ms=CONSUME_BLOCK_MS)
    raise AssertionError("the expected mail never came")


async def login_on(auth: RunningAuth, slug: str, email: str, device_id: str) -> auth_sessions_pb2.LoginResponse:
    return await auth.stub.Login(
        auth_sessions_pb2.LoginRequest(
            organization_slug=slug, login=email, password=MEMBER_PASSWORD, device_id=device_id
        )
    )


async def customer_of(auth: RunningAuth, tenant: Tenant) -> tuple[str, str]:
    customer_id = str(uuid.uuid4())
    email = f"c-{customer_id[:8]}@example.com"
    created = await auth.stub.CreateCustomer(
        auth_customers_pb2.CreateCustomerRequest(customer_id=customer_id, email=email, display_name="Cleo"),
        metadata=bearer(tenant.access_token),
    )
    await auth.stub.AcceptInvitation(
        auth_members_pb2.AcceptInvitationRequest(
            invitation_token=created.invitation.invitation_token, password=MEMBER_PASSWORD
        )
    )
    return customer_id, email


async def entries_of(
    redis: redis_asyncio.Redis, start: bytes, organization_id: str, event_type: str
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    entries: list[Any] = await redis.xrange(STREAM, min=start)
    return [
        (entry_id, fields)
        for entry_id, fields in entries
        if (envelope := decode_entry(fields)).organization_id == organization_id and envelope.event_type == event_type
    ]


def lockout_of(organization_id: str, principal_id: str) -> events_pb2.EventEnvelope:
    locked = auth_events_pb2.PrincipalLockedOut(
        principal_id=principal_id,
        scope=auth_events_pb2.LOCKOUT_SCOPE_PRINCIPAL,
        locked_until=timestamp_pb2.Timestamp(seconds=1_796_000_000),
        failures=10,
    )
    packed = any_pb2.Any()
    packed.Pack(locked)
    return events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type=locked.DESCRIPTOR.full_name,
        organization_id=organization_id,
        occurred_at=timestamp_pb2.Timestamp(seconds=1_795_999_100),
        payload=packed,
    )


async def test_a_reset_by_an_admin_mails_the_member_once_and_a_customer_never(
    auth: RunningAuth,
    redis_server_url: str,
    caplog: pytest.LogCaptureFixture,
    span_exporter: InMemorySpanExporter,
) -> None:
    caplog.set_level(logging.DEBUG)
    redis = redis_asyncio.Redis.from_url(redis_server_url)
    try:
        # Where this test's events start: the stream is shared with every other test of the session.
        latest: list[Any] = await redis.xrevrange(STREAM, count=1)
        start = b"(" + latest[0][0] if latest else b"-"
        mailer = auth.app.member_mailer()
        consumer = member_mail_consumer(redis, mailer, group=f"test-member-mail-{uuid.uuid4().hex[:8]}")
        await consumer.ensure_group()

        tenant = await sign_up(auth.stub)
        admin_token = await step_up_owner(auth, tenant)
        member_id, member_email = await invite_and_accept(auth, tenant, [auth_identity_pb2.ROLE_APPROVER])
        phone = str(uuid.uuid4())
        signed_in = await login_on(auth, tenant.slug, member_email, phone)
        await _register(auth, signed_in.tokens.access_token, phone, Ed25519PrivateKey.generate())
        # A second device needs a session that proved a second factor: the member steps up with TOTP.
        member_step_up = await step_up_owner(
            auth,
            Tenant(tenant.organization_id, tenant.slug, member_id, member_email, signed_in.tokens.access_token, ""),
        )
        await _register(auth, member_step_up, str(uuid.uuid4()), Ed25519PrivateKey.generate())
        customer_id, customer_email = await customer_of(auth, tenant)
        await login_on(auth, tenant.slug, customer_email, str(uuid.uuid4()))

        reset = await auth.stub.ResetMemberDevices(
            auth_members_pb2.ResetMemberDevicesRequest(member_id=member_id, request_id=str(uuid.uuid4())),
            metadata=bearer(admin_token),
        )
        assert reset.revoked_device_count == 2

        async def reset_mailed() -> bool:
            return RESET_SUBJECT in mails_to(auth, member_email)

        await consume_until(consumer, reset_mailed)
        revoked = await entries_of(redis, start, tenant.organization_id, "wallet.auth.v1.DeviceRevoked")
        assert len(revoked) == 2
        # The relay may publish an event twice: both revocations arrive again, and the consumer handles them.
        again = [await redis.xadd(STREAM, fields) for _, fields in revoked]

        async def redelivered() -> bool:
            groups: list[Any] = await redis.xinfo_groups(STREAM)
            (mine,) = [group for group in groups if group["name"].decode() == consumer._settings.group]
            return bool(mine["last-delivered-id"] >= again[-1] and mine["pending"] == 0)

        await consume_until(consumer, redelivered)
        assert await mailer.on_event(decode_entry(revoked[0][1])) is MailOutcome.ALREADY_SENT

        assert mails_to(auth, member_email) == [NEW_SIGN_IN_SUBJECT, RESET_SUBJECT]
        assert mails_to(auth, customer_email) == []
        # A customer's lockout finds no member to mail (the vault texts customers); a member's does.
        assert await mailer.on_event(lockout_of(tenant.organization_id, customer_id)) is MailOutcome.NO_RECIPIENT
        assert await mailer.on_event(lockout_of(tenant.organization_id, member_id)) is MailOutcome.SENT
        assert mails_to(auth, customer_email) == []
        for mail in outbox(auth).read():
            assert member_email not in mail["subject"] + mail["body"]

        logged = "\n".join(
            f"{record.getMessage()} {getattr(record, 'fields', '')} {record.exc_text or ''}"
            for record in caplog.records
        )
        assert "member security notice mailed" in logged
        spans = repr([(span.name, dict(span.attributes or {})) for span in span_exporter.get_finished_spans()])
        redis_keys = [key async for key in redis.scan_iter(match="auth:*", count=500)]
        claims = [key for key in redis_keys if key.startswith(b"auth:member-mail:")]
        assert claims
        claim_values = [await redis.get(key) for key in claims]
        for address in (member_email, customer_email):
            assert address not in logged
            assert address not in spans
            assert all(address.encode() not in key for key in redis_keys)
            assert all(address.encode() not in (value or b"") for value in claim_values)
    finally:
        await redis.aclose()
