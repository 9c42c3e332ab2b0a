"""Brute force: progressive delays from 5 failures, a lock at 10 that expires with the (injected) clock, admin
unlock, per-source counting through the trusted gateway header, audit of lockouts — and the same protection from
Postgres when Redis is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from devstack import start_embedded_redis
from devstack.redis_server import EmbeddedRedis
from tests.integration.auth.conftest import (
    OWNER_PASSWORD,
    RunningAuth,
    Tenant,
    auth_env,
    bearer,
    create_database,
    drop_database,
    error_of,
    sign_up,
    start_auth,
)
from wallet.auth.v1 import auth_audit_pb2, auth_events_pb2, auth_members_pb2, auth_sessions_pb2

pytestmark = pytest.mark.integration
HEADER = "x-forwarded-for"
WRONG = "definitely not the password"
LOCK_S = 15 * 60


@pytest.fixture(scope="module")
async def auth(postgres_server_url: str, redis_server_url: str) -> AsyncIterator[RunningAuth]:
    database_url = await create_database(postgres_server_url)
    running = await start_auth(database_url, redis_server_url, auth_env(AUTH_TRUSTED_CLIENT_IP_HEADER=HEADER))
    try:
        yield running
    finally:
        await running.channel.close()
        await running.server.stop()
        await drop_database(postgres_server_url, database_url)


@pytest.fixture(autouse=True)
def real_time_after_each_test(auth: RunningAuth) -> Iterator[None]:
    # Tokens minted while the clock is moved ahead are "not valid yet" for real-time verifiers: each test starts
    # and ends at real time.
    auth.clock.offset_s = 0.0
    yield
    auth.clock.offset_s = 0.0


def from_ip(ip: str) -> tuple[tuple[str, str], ...]:
    return ((HEADER, f"203.0.113.250, {ip}"),)


async def attempt(auth: RunningAuth, tenant: Tenant, password: str, ip: str) -> auth_sessions_pb2.LoginResponse:
    return await auth.stub.Login(
        auth_sessions_pb2.LoginRequest(organization_slug=tenant.slug, login=tenant.owner_email, password=password),
        metadata=from_ip(ip),
    )


async def fail_until_locked(auth: RunningAuth, tenant: Tenant, ip: str) -> list[str]:
    """Ten wrong passwords, moving the clock past each progressive delay; returns the reasons seen."""
    reasons = []
    for failure in range(1, 11):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await attempt(auth, tenant, WRONG, ip)
        reasons.append(error_of(raised).reason)
        if 5 <= failure < 10:
            # Inside the delay the next try is refused without checking the password.
            with pytest.raises(grpc.aio.AioRpcError) as delayed:
                await attempt(auth, tenant, OWNER_PASSWORD, ip)
            details = error_of(delayed)
            assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert details.retry_after_s is not None
            auth.clock.advance(61)
    return reasons


async def test_lock_at_ten_failures_expires_after_fifteen_minutes(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    reasons = await fail_until_locked(auth, tenant, "198.51.100.1")
    assert reasons == ["INVALID_CREDENTIALS"] * 10
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.1")
    details = error_of(raised)
    assert details.reason == "ACCOUNT_LOCKED"
    assert 60 < (details.retry_after_s or 0) <= LOCK_S
    # Locked per account: another address does not help.
    with pytest.raises(grpc.aio.AioRpcError):
        await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.2")
    auth.clock.advance(LOCK_S + 1)
    reply = await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.1")
    assert reply.outcome == auth_sessions_pb2.LOGIN_OUTCOME_AUTHENTICATED
    events = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(event_type=auth_events_pb2.AUTH_EVENT_TYPE_LOCKED_OUT),
        metadata=bearer(tenant.access_token),
    )
    assert len(events.audit_events) == 1
    assert events.audit_events[0].source_ip == "198.51.100.1"
    assert events.audit_events[0].principal_id == tenant.owner_id


async def test_admin_unlock_lifts_the_lock(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    admin_session = await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.3")
    await fail_until_locked(auth, tenant, "198.51.100.3")
    member = await auth.stub.GetMember(
        auth_members_pb2.GetMemberRequest(member_id=tenant.owner_id), metadata=bearer(tenant.access_token)
    )
    assert member.member.HasField("locked_until")
    await auth.stub.UnlockMember(
        auth_members_pb2.UnlockMemberRequest(member_id=tenant.owner_id, request_id=str(uuid.uuid4())),
        metadata=bearer(admin_session.tokens.access_token),
    )
    assert (await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.3")).tokens.access_token


async def test_unknown_logins_are_counted_too(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    ghost = Tenant(tenant.organization_id, tenant.slug, "", "ghost@example.com", "", "")
    reasons = await fail_until_locked(auth, ghost, "198.51.100.4")
    assert reasons == ["INVALID_CREDENTIALS"] * 10
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await attempt(auth, ghost, WRONG, "198.51.100.4")
    assert error_of(raised).reason == "ACCOUNT_LOCKED"


@pytest.fixture
async def auth_with_failing_redis(postgres_server_url: str, tmp_path: Path) -> AsyncIterator[RunningAuth]:
    redis = start_embedded_redis(tmp_path / "redis")
    database_url = await create_database(postgres_server_url)
    running = await start_auth(database_url, redis.url, auth_env())
    try:
        redis.stop()  # Redis goes away after the server started
        yield running
    finally:
        redis.stop()
        await running.channel.close()
        await running.server.stop()
        await drop_database(postgres_server_url, database_url)


async def test_redis_down_falls_back_to_postgres_counters(auth_with_failing_redis: RunningAuth) -> None:
    auth = auth_with_failing_redis
    tenant = await sign_up(auth.stub)
    for failure in range(1, 11):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await attempt(auth, tenant, WRONG, "ignored")
        assert error_of(raised).reason == "INVALID_CREDENTIALS"
        if failure >= 5:
            auth.clock.advance(61)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await attempt(auth, tenant, OWNER_PASSWORD, "ignored")
    assert error_of(raised).reason == "ACCOUNT_LOCKED"
    connection = await asyncpg.connect(auth.database_url)
    try:
        locked = await connection.fetchval(
            "SELECT count(*) FROM login_failure_counters WHERE locked_until IS NOT NULL"
        )
    finally:
        await connection.close()
    assert locked == 1


@pytest.fixture
async def auth_with_redis_to_stop(
    postgres_server_url: str, tmp_path: Path
) -> AsyncIterator[tuple[RunningAuth, EmbeddedRedis]]:
    redis = start_embedded_redis(tmp_path / "redis")
    database_url = await create_database(postgres_server_url)
    running = await start_auth(database_url, redis.url, auth_env())
    try:
        yield running, redis
    finally:
        redis.stop()
        await running.channel.close()
        await running.server.stop()
        await drop_database(postgres_server_url, database_url)


async def test_counts_made_while_redis_was_up_hold_when_it_goes_down(
    auth_with_redis_to_stop: tuple[RunningAuth, EmbeddedRedis],
) -> None:
    auth, redis = auth_with_redis_to_stop
    tenant = await sign_up(auth.stub)
    for failure in range(1, 8):  # seven failures counted while Redis is up
        with pytest.raises(grpc.aio.AioRpcError):
            await attempt(auth, tenant, WRONG, "ignored")
        if 5 <= failure < 7:
            auth.clock.advance(61)
    redis.stop()
    # The Postgres copy carries the seven: the delay still applies, and three more failures lock the account.
    with pytest.raises(grpc.aio.AioRpcError) as delayed:
        await attempt(auth, tenant, OWNER_PASSWORD, "ignored")
    assert error_of(delayed).reason == "ACCOUNT_LOCKED"
    for _ in range(3):
        auth.clock.advance(61)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await attempt(auth, tenant, WRONG, "ignored")
        assert error_of(raised).reason == "INVALID_CREDENTIALS"
    auth.clock.advance(61)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await attempt(auth, tenant, OWNER_PASSWORD, "ignored")
    details = error_of(raised)
    assert details.reason == "ACCOUNT_LOCKED"
    assert details.retry_after_s is not None
    assert details.retry_after_s > 60  # the 15-minute lock, not a progressive delay


async def test_wrong_mfa_codes_count_and_a_known_password_does_not_reset_them(auth: RunningAuth) -> None:
    from tests.integration.auth.test_mfa import enrol_totp

    tenant = await sign_up(auth.stub)
    await enrol_totp(auth, tenant.access_token)
    for failure in range(1, 11):
        challenge = await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.5")
        assert challenge.outcome == auth_sessions_pb2.LOGIN_OUTCOME_MFA_REQUIRED
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await auth.stub.VerifyMfa(
                auth_sessions_pb2.VerifyMfaRequest(
                    mfa_challenge_id=challenge.mfa_challenge.mfa_challenge_id, totp_code="000000"
                ),
                metadata=from_ip("198.51.100.5"),
            )
        assert error_of(raised).reason == "MFA_CODE_INVALID"
        if failure >= 5:
            auth.clock.advance(61)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.5")
    assert error_of(raised).reason == "ACCOUNT_LOCKED"


async def test_one_source_failing_on_many_accounts_is_slowed_down(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    ip = "198.51.100.6"
    for index in range(50):  # SOURCE_DELAY_FROM_FAILURES, each on a different login (stuffing)
        stuffed = Tenant(tenant.organization_id, tenant.slug, "", f"victim{index}@example.com", "", "")
        with pytest.raises(grpc.aio.AioRpcError):
            await attempt(auth, stuffed, WRONG, ip)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await attempt(auth, tenant, OWNER_PASSWORD, ip)
    details = error_of(raised)
    assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.retry_after_s is not None
    # The account itself is fine from elsewhere.
    assert (await attempt(auth, tenant, OWNER_PASSWORD, "198.51.100.7")).tokens.access_token
