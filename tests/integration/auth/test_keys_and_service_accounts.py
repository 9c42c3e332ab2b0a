"""Signing-key rotation (old tokens valid until they expire, then the old key leaves the JWKS), service accounts
and the client-credentials grant, platform clients acting for a tenant, and events on the Redis stream."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import jwt
import pytest
import redis.asyncio as redis_asyncio

from services.auth.audit import STREAM
from services.auth.bootstrap import bootstrap_platform_client
from services.kit.jwks import AuthServiceJwksSource
from services.kit.outbox import decode_entry
from services.kit.tokens import TokenVerifier
from tests.integration.auth.conftest import RunningAuth, bearer, error_of, sign_up
from wallet.auth.v1 import (
    auth_audit_pb2,
    auth_events_pb2,
    auth_keys_pb2,
    auth_members_pb2,
    auth_service_accounts_pb2,
)

pytestmark = pytest.mark.integration


async def platform_token(auth: RunningAuth, scopes: list[str], organization_id: str = "") -> str:
    client_id, secret, _ = await bootstrap_platform_client(auth.app.store, f"ops-{uuid.uuid4().hex[:6]}", scopes)
    reply = await auth.stub.IssueServiceToken(
        auth_keys_pb2.IssueServiceTokenRequest(
            client_id=client_id, client_secret=secret, organization_id=organization_id
        )
    )
    return reply.access_token


async def test_rotation_keeps_old_tokens_valid_until_they_expire(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    operator = await platform_token(auth, ["auth.keys.admin", "auth.keys.read"])
    before = {key.kid for key in (await auth.stub.GetJwks(auth_keys_pb2.GetJwksRequest())).keys}
    rotate = auth_keys_pb2.RotateSigningKeysRequest(request_id=str(uuid.uuid4()))
    rotated = await auth.stub.RotateSigningKeys(rotate, metadata=bearer(operator))
    replay = await auth.stub.RotateSigningKeys(rotate, metadata=bearer(operator))
    assert replay.active_key.key_id == rotated.active_key.key_id
    assert rotated.previous_key.key_id in before
    assert rotated.previous_key.status == auth_keys_pb2.SIGNING_KEY_STATUS_RETIRING
    jwks = {key.kid for key in (await auth.stub.GetJwks(auth_keys_pb2.GetJwksRequest())).keys}
    assert {rotated.active_key.key_id, rotated.previous_key.key_id} <= jwks
    # A token signed by the old key still works, here and for the kit's verifier elsewhere.
    await auth.stub.GetMember(
        auth_members_pb2.GetMemberRequest(member_id=tenant.owner_id), metadata=bearer(tenant.access_token)
    )
    source = AuthServiceJwksSource(auth.address)
    try:
        verifier = TokenVerifier(source, audience="wallet", issuer="wallet-auth")
        await verifier.verify(tenant.access_token)
        fresh = await sign_up(auth.stub)
        assert fresh.access_token.count(".") == 2
        await verifier.verify(fresh.access_token)
    finally:
        await source.close()
    listed = await auth.stub.ListSigningKeys(auth_keys_pb2.ListSigningKeysRequest(), metadata=bearer(operator))
    assert listed.signing_keys[0].key_id == rotated.active_key.key_id
    # Once the last token it can have signed has expired, the old key leaves the JWKS.
    auth.clock.advance(3600)
    try:
        jwks_later = {key.kid for key in (await auth.stub.GetJwks(auth_keys_pb2.GetJwksRequest())).keys}
    finally:
        auth.clock.advance(-3600)
    assert rotated.previous_key.key_id not in jwks_later
    assert rotated.active_key.key_id in jwks_later


async def test_rotation_needs_a_platform_scope(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.RotateSigningKeys(
            auth_keys_pb2.RotateSigningKeysRequest(request_id=str(uuid.uuid4())), metadata=bearer(tenant.access_token)
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_service_account_lifecycle_and_client_credentials(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    account_id = str(uuid.uuid4())
    create = auth_service_accounts_pb2.CreateServiceAccountRequest(
        service_account_id=account_id, display_name="Payroll", scopes=["auth.members.read", "ledger.transfers.write"]
    )
    created = await auth.stub.CreateServiceAccount(create, metadata=bearer(tenant.access_token))
    assert created.client_secret
    replay = await auth.stub.CreateServiceAccount(create, metadata=bearer(tenant.access_token))
    assert replay.client_secret == ""
    issued = await auth.stub.IssueServiceToken(
        auth_keys_pb2.IssueServiceTokenRequest(
            client_id=account_id, client_secret=created.client_secret, scopes=["auth.members.read"]
        )
    )
    assert list(issued.scopes) == ["auth.members.read"]
    members = await auth.stub.ListMembers(auth_members_pb2.ListMembersRequest(), metadata=bearer(issued.access_token))
    assert [m.member_id for m in members.members] == [tenant.owner_id]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.IssueServiceToken(
            auth_keys_pb2.IssueServiceTokenRequest(client_id=account_id, client_secret="wrong")
        )
    assert error_of(raised).reason == "INVALID_CREDENTIALS"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.IssueServiceToken(
            auth_keys_pb2.IssueServiceTokenRequest(
                client_id=account_id, client_secret=created.client_secret, organization_id=str(uuid.uuid4())
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rotated = await auth.stub.RotateServiceAccountSecret(
        auth_service_accounts_pb2.RotateServiceAccountSecretRequest(
            service_account_id=account_id, request_id=str(uuid.uuid4())
        ),
        metadata=bearer(tenant.access_token),
    )
    for secret in (created.client_secret, rotated.client_secret):  # both work during the overlap
        await auth.stub.IssueServiceToken(
            auth_keys_pb2.IssueServiceTokenRequest(client_id=account_id, client_secret=secret)
        )
    await auth.stub.DisableServiceAccount(
        auth_service_accounts_pb2.DisableServiceAccountRequest(
            service_account_id=account_id, request_id=str(uuid.uuid4())
        ),
        metadata=bearer(tenant.access_token),
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.IssueServiceToken(
            auth_keys_pb2.IssueServiceTokenRequest(client_id=account_id, client_secret=rotated.client_secret)
        )
    assert error_of(raised).reason == "PRINCIPAL_DISABLED"


async def test_tenants_cannot_grant_platform_or_unheld_scopes(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.CreateServiceAccount(
            auth_service_accounts_pb2.CreateServiceAccountRequest(
                service_account_id=str(uuid.uuid4()),
                display_name="Sneaky",
                scopes=["auth.keys.admin", "nonsense", "risk.assessments.assess"],
            ),
            metadata=bearer(tenant.access_token),
        )
    details = error_of(raised)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(details.field_violations) == 3


async def test_platform_client_acts_for_a_tenant(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    token = await platform_token(auth, ["auth.members.read"], organization_id=tenant.organization_id)
    members = await auth.stub.ListMembers(auth_members_pb2.ListMembersRequest(), metadata=bearer(token))
    assert [m.member_id for m in members.members] == [tenant.owner_id]


async def test_events_reach_the_redis_stream(auth: RunningAuth, redis_server_url: str) -> None:
    tenant = await sign_up(auth.stub)
    client = redis_asyncio.Redis.from_url(redis_server_url)
    try:
        for _ in range(100):
            entries = await client.xrange(STREAM, "-", "+")
            envelopes = [decode_entry(fields) for _, fields in entries]
            mine = [e for e in envelopes if e.organization_id == tenant.organization_id]
            if any(e.event_type == "wallet.auth.v1.PrincipalCreated" for e in mine):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("PrincipalCreated never reached the stream")
    finally:
        await client.aclose()
    created = next(e for e in mine if e.event_type == "wallet.auth.v1.PrincipalCreated")
    other = await sign_up(auth.stub)
    theirs = await auth.stub.ListAuditEvents(
        auth_audit_pb2.ListAuditEventsRequest(), metadata=bearer(other.access_token)
    )
    assert theirs.audit_events
    assert tenant.owner_id not in {event.principal_id for event in theirs.audit_events}
    payload = auth_events_pb2.PrincipalCreated()
    assert created.payload.Unpack(payload)
    assert payload.principal_id == tenant.owner_id


async def test_rerunning_the_platform_bootstrap_rotates_the_secret_and_sets_the_scopes(auth: RunningAuth) -> None:
    name = f"svc-{uuid.uuid4().hex[:6]}"
    client_id, first_secret, created = await bootstrap_platform_client(auth.app.store, name, ["auth.keys.read"])
    assert created
    again, second_secret, created = await bootstrap_platform_client(
        auth.app.store, name, ["auth.keys.read", "auth.keys.admin"]
    )
    assert (again, created) == (client_id, False)
    assert second_secret != first_secret
    reply = await auth.stub.IssueServiceToken(
        auth_keys_pb2.IssueServiceTokenRequest(client_id=client_id, client_secret=second_secret)
    )
    claims = jwt.decode(reply.access_token, options={"verify_signature": False})
    assert set(claims["scope"].split()) == {"auth.keys.read", "auth.keys.admin"}
