"""The member-mail use case with fakes at its edges: a member is mailed once per notice, a customer never, and a
sink failure releases the claim so the redelivered event mails after all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from services.auth.mail import MailSinkError
from services.auth.service_member_mail import MailNotDelivered, MailOutcome, MemberMailer
from wallet.auth.v1 import auth_events_pb2
from wallet.common.v1 import events_pb2

ORGANIZATION = uuid.uuid4()
MEMBER = uuid.uuid4()
CUSTOMER = uuid.uuid4()
ADMIN = uuid.uuid4()
ADDRESS = "mia.member@example.com"


class Addresses:
    async def member_address(self, organization_id: uuid.UUID, principal_id: uuid.UUID) -> str | None:
        return ADDRESS if (organization_id, principal_id) == (ORGANIZATION, MEMBER) else None


class Claims:
    def __init__(self) -> None:
        self.claimed: set[uuid.UUID] = set()

    async def claim(self, notice_id: uuid.UUID) -> bool:
        if notice_id in self.claimed:
            return False
        self.claimed.add(notice_id)
        return True

    async def release(self, notice_id: uuid.UUID) -> None:
        self.claimed.discard(notice_id)


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, str, str, str]] = []
        self.refuse = False

    async def send(self, notification_id: uuid.UUID, to_address: str, subject: str, body: str) -> None:
        if self.refuse:
            raise MailSinkError("provider unavailable")
        self.sent.append((notification_id, to_address, subject, body))


def reset_event(principal: uuid.UUID) -> events_pb2.EventEnvelope:
    payload: Message = auth_events_pb2.DeviceRevoked(
        principal_id=str(principal), device_id=str(uuid.uuid4()), actor_principal_id=str(ADMIN), reset_by_admin=True
    )
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime(2026, 12, 8, 1, 30, tzinfo=UTC))
    return events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type=payload.DESCRIPTOR.full_name,
        organization_id=str(ORGANIZATION),
        occurred_at=occurred,
        payload=packed,
    )


async def test_two_devices_of_one_reset_and_a_redelivery_mail_once() -> None:
    sink = Sink()
    mailer = MemberMailer(Addresses(), Claims(), sink)
    first, second = reset_event(MEMBER), reset_event(MEMBER)
    assert await mailer.on_event(first) is MailOutcome.SENT
    assert await mailer.on_event(first) is MailOutcome.ALREADY_SENT
    assert await mailer.on_event(second) is MailOutcome.ALREADY_SENT
    assert [(to, subject) for _, to, subject, _ in sink.sent] == [(ADDRESS, "Your devices and passkeys were reset")]


async def test_a_customer_or_an_unrelated_event_mails_no_one() -> None:
    sink = Sink()
    mailer = MemberMailer(Addresses(), Claims(), sink)
    assert await mailer.on_event(reset_event(CUSTOMER)) is MailOutcome.NO_RECIPIENT
    unrelated = reset_event(MEMBER)
    unrelated.event_type = auth_events_pb2.LoginFailed.DESCRIPTOR.full_name
    assert await mailer.on_event(unrelated) is MailOutcome.IGNORED
    assert sink.sent == []


async def test_a_refused_mail_is_retried_on_redelivery_and_the_error_names_no_address() -> None:
    sink = Sink()
    mailer = MemberMailer(Addresses(), Claims(), sink)
    event = reset_event(MEMBER)
    sink.refuse = True
    with pytest.raises(MailNotDelivered) as raised:
        await mailer.on_event(event)
    assert ADDRESS not in str(raised.value)
    sink.refuse = False
    assert await mailer.on_event(event) is MailOutcome.SENT
    assert len(sink.sent) == 1
