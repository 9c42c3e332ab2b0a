"""The member-mail job: auth consumes its own event stream, ``wallet.auth.v1.events``, in its own consumer group
through the kit's ``StreamConsumer`` and mails members their security notices (``service_member_mail``).

At least once in, at most once out (the notice claims). A new group starts at the stream's end, so events published
before the job first ran mail no one (no flood of old notices on first start).
"""

from __future__ import annotations

import asyncpg
import redis.asyncio as redis_asyncio

from services.auth.audit import STREAM
from services.auth.service_member_mail import MailNotDelivered, MemberMailer
from services.kit.stream_consumer import ConsumerSettings, StreamConsumer
from wallet.common.v1 import events_pb2

MEMBER_MAIL_GROUP = "auth-member-mail"
# "Try again later" errors: the database, Redis or the mail provider is down. Anything else is a bug, logged loudly.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    redis_asyncio.RedisError,
    MailNotDelivered,
)


def member_mail_consumer(
    redis: redis_asyncio.Redis,
    mailer: MemberMailer,
    *,
    stream: str = STREAM,
    group: str = MEMBER_MAIL_GROUP,
    start_id: str = "$",
) -> StreamConsumer:
    async def handle(envelope: events_pb2.EventEnvelope) -> None:
        await mailer.on_event(envelope)

    settings = ConsumerSettings(stream=stream, group=group, start_id=start_id)
    return StreamConsumer(redis, settings, handle, retryable=RETRYABLE_ERRORS)
