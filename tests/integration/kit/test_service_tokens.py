"""The kit's platform service tokens against a real auth server: a platform client gets a token for a tenant with
the scopes it asked for, the token is cached per tenant, concurrent first callers share one request, and a wrong
secret or a missing client is ``ServiceTokenUnavailable``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from services.auth.bootstrap import bootstrap_platform_client
from services.kit.service_tokens import ClientCredentialsTokens, ServiceTokenUnavailable, service_client
from tests.integration.auth.conftest import RunningAuth, auth_env, create_database, drop_database, sign_up, start_auth

pytestmark = pytest.mark.integration

SCOPE = "risk.assessments.assess"


@pytest.fixture(scope="module")
async def auth(postgres_server_url: str, redis_server_url: str) -> AsyncIterator[RunningAuth]:
    database_url = await create_database(postgres_server_url)
    running = await start_auth(database_url, redis_server_url, auth_env())
    try:
        yield running
    finally:
        await running.channel.close()
        await running.server.stop()
        await drop_database(postgres_server_url, database_url)


async def _platform_client(auth: RunningAuth) -> tuple[str, str]:
    client_id, secret, _ = await bootstrap_platform_client(auth.app.store, f"ledger-{uuid.uuid4().hex[:6]}", [SCOPE])
    return client_id, secret


async def test_a_tenant_token_with_the_asked_scopes_cached_per_tenant(auth: RunningAuth) -> None:
    client_id, secret = await _platform_client(auth)
    tokens = ClientCredentialsTokens(auth.address, service_client(client_id, secret, [SCOPE]))
    try:
        tenant = (await sign_up(auth.stub)).organization_id
        other = (await sign_up(auth.stub)).organization_id
        first = await tokens.token_for(tenant)
        principal = await auth.app.verifier.verify(first)
        assert principal.organization_id == tenant
        assert principal.kind == "service"
        assert principal.scopes == frozenset({SCOPE})
        assert await tokens.token_for(tenant) == first
        assert tokens.cached(tenant) == first
        assert (await auth.app.verifier.verify(await tokens.token_for(other))).organization_id == other
    finally:
        await tokens.close()


async def test_concurrent_first_callers_share_one_request(auth: RunningAuth) -> None:
    client_id, secret = await _platform_client(auth)
    tokens = ClientCredentialsTokens(auth.address, service_client(client_id, secret, [SCOPE]))
    try:
        tenant = (await sign_up(auth.stub)).organization_id
        issued = await asyncio.gather(*(tokens.token_for(tenant) for _ in range(10)))
        assert len(set(issued)) == 1
    finally:
        await tokens.close()


async def test_a_wrong_secret_or_no_client_is_unavailable(auth: RunningAuth) -> None:
    client_id, _ = await _platform_client(auth)
    wrong = ClientCredentialsTokens(auth.address, service_client(client_id, "not-the-secret", [SCOPE]))
    try:
        with pytest.raises(ServiceTokenUnavailable):
            await wrong.token_for((await sign_up(auth.stub)).organization_id)
    finally:
        await wrong.close()
    with pytest.raises(ServiceTokenUnavailable):
        await ClientCredentialsTokens(auth.address, service_client(None, None, [SCOPE])).token_for(str(uuid.uuid4()))
