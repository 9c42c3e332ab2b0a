"""Use case of the member-mail job: one auth event in, at most one security notice mailed to the member it concerns.

Steps: the event → a security fact (``member_mail_events``; most events are none) → the member's address (customers,
service accounts and unknown principals have none here: the vault texts customers) → claim the notice id (at most
once, ``member_mail_claims``) → the fixed text (``domain_member_mail``) → the sink. A sink failure releases the claim
and raises ``MailNotDelivered``, so the consumer leaves the event unacknowledged and a redelivery tries again.

Privacy: the address goes to the sink's ``to`` field and nowhere else — logs, spans, metrics and errors carry the
notice id, its kind and the event id only.
"""

from __future__ import annotations

import logging
import uuid
from enum import Enum
from typing import Protocol

from prometheus_client import Counter

from services.auth.domain_member_mail import DevicesReset, SecurityFact, notice_for
from services.auth.mail import MailSink, MailSinkError
from services.auth.member_mail_events import security_fact
from wallet.common.v1 import events_pb2

log = logging.getLogger(__name__)

MEMBER_MAIL = Counter(
    "wallet_auth_member_mail_total",
    "Security events considered for a member notice, by notice kind and outcome.",
    ["kind", "outcome"],
)


class MailOutcome(Enum):
    IGNORED = "ignored"  # not a member-facing security event
    NO_RECIPIENT = "no_recipient"  # a customer, a service account, an unknown principal, no address
    ALREADY_SENT = "already_sent"  # a redelivery, or another event of the same reset
    SENT = "sent"


class MailNotDelivered(Exception):
    """The mail sink refused a notice; the event must be redelivered. Names the notice kind only."""


class Addresses(Protocol):
    async def member_address(self, organization_id: uuid.UUID, principal_id: uuid.UUID) -> str | None: ...


class Claims(Protocol):
    async def claim(self, notice_id: uuid.UUID) -> bool: ...

    async def release(self, notice_id: uuid.UUID) -> None: ...


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class MemberMailer:
    def __init__(self, addresses: Addresses, claims: Claims, sink: MailSink) -> None:
        self._addresses = addresses
        self._claims = claims
        self._sink = sink

    async def _address(self, envelope: events_pb2.EventEnvelope, fact: SecurityFact) -> str | None:
        organization_id = _uuid_or_none(envelope.organization_id)
        principal_id = _uuid_or_none(fact.principal_id)
        if organization_id is None or principal_id is None:
            return None
        if isinstance(fact, DevicesReset):
            assert fact.organization_id == envelope.organization_id
        return await self._addresses.member_address(organization_id, principal_id)

    async def on_event(self, envelope: events_pb2.EventEnvelope) -> MailOutcome:
        fact = security_fact(envelope)
        if fact is None:
            return MailOutcome.IGNORED
        notice = notice_for(fact)
        kind = notice.kind.value
        address = await self._address(envelope, fact)
        if address is None:
            MEMBER_MAIL.labels(kind, MailOutcome.NO_RECIPIENT.value).inc()
            return MailOutcome.NO_RECIPIENT
        if not await self._claims.claim(notice.notice_id):
            MEMBER_MAIL.labels(kind, MailOutcome.ALREADY_SENT.value).inc()
            return MailOutcome.ALREADY_SENT
        try:
            await self._sink.send(notice.notice_id, address, notice.subject, notice.body)
        except (MailSinkError, OSError) as err:
            await self._claims.release(notice.notice_id)
            MEMBER_MAIL.labels(kind, "failed").inc()
            raise MailNotDelivered(kind) from err
        MEMBER_MAIL.labels(kind, MailOutcome.SENT.value).inc()
        log.info(
            "member security notice mailed",
            extra={"fields": {"notice_id": str(notice.notice_id), "kind": kind, "event_id": envelope.event_id}},
        )
        return MailOutcome.SENT
