"""Organization policy reads and updates (validation, idempotency) and audit-trail paging and filters."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.auth.conftest import RunningAuth, bearer, error_of, login, sign_up
from tests.integration.auth.test_members_and_customers import step_up_owner
from wallet.auth.v1 import auth_audit_pb2, auth_events_pb2, auth_organizations_pb2

pytestmark = pytest.mark.integration


async def test_policy_update_validates_every_field_and_replays(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    step_up = await step_up_owner(auth, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.UpdateOrganizationPolicy(
            auth_organizations_pb2.UpdateOrganizationPolicyRequest(
                policy=auth_organizations_pb2.OrganizationPolicy(
                    password_min_length=8, session_max_lifetime=Duration(seconds=60)
                ),
                update_mask=FieldMask(paths=["password_min_length", "session_max_lifetime", "colour"]),
                request_id=str(uuid.uuid4()),
            ),
            metadata=bearer(step_up),
        )
    details = error_of(raised)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in details.field_violations} == {
        "update_mask",
        "policy.password_min_length",
        "policy.session_max_lifetime",
    }
    request = auth_organizations_pb2.UpdateOrganizationPolicyRequest(
        policy=auth_organizations_pb2.OrganizationPolicy(password_min_length=16),
        update_mask=FieldMask(paths=["password_min_length"]),
        request_id=str(uuid.uuid4()),
    )
    updated = await auth.stub.UpdateOrganizationPolicy(request, metadata=bearer(step_up))
    assert updated.policy.password_min_length == 16
    assert (
        await auth.stub.UpdateOrganizationPolicy(request, metadata=bearer(step_up))
    ).policy.password_min_length == 16
    request.policy.password_min_length = 20
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.UpdateOrganizationPolicy(request, metadata=bearer(step_up))
    assert error_of(raised).reason == "IDEMPOTENCY_KEY_REUSED"
    read = await auth.stub.GetOrganizationPolicy(
        auth_organizations_pb2.GetOrganizationPolicyRequest(), metadata=bearer(tenant.access_token)
    )
    assert read.policy.password_min_length == 16
    assert not read.policy.mfa_required


async def test_audit_pages_newest_first_and_filters(auth: RunningAuth) -> None:
    tenant = await sign_up(auth.stub)
    for _ in range(3):
        await login(auth.stub, tenant.slug, tenant.owner_email)
    request = auth_audit_pb2.ListAuditEventsRequest(
        page_size=2, event_type=auth_events_pb2.AUTH_EVENT_TYPE_LOGIN_SUCCEEDED
    )
    first = await auth.stub.ListAuditEvents(request, metadata=bearer(tenant.access_token))
    request.page_token = first.next_page_token
    second = await auth.stub.ListAuditEvents(request, metadata=bearer(tenant.access_token))
    ids = [event.audit_event_id for event in [*first.audit_events, *second.audit_events]]
    assert len(ids) == 3
    assert ids == sorted(ids, reverse=True)
    assert second.next_page_token == ""
    assert all(event.details["principal_id"] == tenant.owner_id for event in first.audit_events)
    assert all("password" not in key for event in first.audit_events for key in event.details)
    # A token issued for one filter is refused with another.
    request.event_type = auth_events_pb2.AUTH_EVENT_TYPE_LOGIN_FAILED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.ListAuditEvents(request, metadata=bearer(tenant.access_token))
    assert error_of(raised).reason == "PAGE_TOKEN_INVALID"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await auth.stub.ListAuditEvents(
            auth_audit_pb2.ListAuditEventsRequest(
                start_time=Timestamp(seconds=2_000_000_000), end_time=Timestamp(seconds=1_000_000_000), page_size=-1
            ),
            metadata=bearer(tenant.access_token),
        )
    assert {v.field for v in error_of(raised).field_violations} >= {"end_time"}
