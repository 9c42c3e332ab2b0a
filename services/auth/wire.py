"""Proto ⇄ domain conversions for the servicer (timestamps, token pairs, principals, sessions, keys, audit)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.auth.core import TOKEN_TYPE, AccessToken, IssuedTokens
from services.auth.domain import Organization, OrganizationPolicy, Principal, token_roles
from services.auth.domain_records import AuditRecord, Session, SigningKeyRecord, Source
from services.auth.proto_enums import kind_to_proto, role_to_proto, status_to_proto

__all__ = ["kind_to_proto"]
from services.auth.service_principals import Invitation, PrincipalView
from services.auth.service_sessions import CurrentPrincipal
from services.auth.signing import public_jwk
from services.kit.tokens import Principal as TokenPrincipal
from wallet.auth.v1 import (
    auth_audit_pb2,
    auth_customers_pb2,
    auth_events_pb2,
    auth_identity_pb2,
    auth_keys_pb2,
    auth_members_pb2,
    auth_organizations_pb2,
    auth_service_accounts_pb2,
    auth_sessions_pb2,
)

_PEER = re.compile(r"^ipv[46]:\[?(?P<ip>[^\]]+?)\]?:\d+$")
_KEY_STATUS = {
    "active": auth_keys_pb2.SIGNING_KEY_STATUS_ACTIVE,
    "retiring": auth_keys_pb2.SIGNING_KEY_STATUS_RETIRING,
    "retired": auth_keys_pb2.SIGNING_KEY_STATUS_RETIRED,
}


def timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    value = Timestamp()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def seconds_of(value: Timestamp) -> float:
    return value.ToNanoseconds() / 1e9


def duration_s(value: Duration) -> int:
    return int(value.ToTimedelta().total_seconds())


def source_of(metadata: Mapping[str, str], peer: str, trusted_header: str | None, device_id: str = "") -> Source:
    """The client address: the configured gateway header's last hop when set (the one the gateway appended),
    otherwise the gRPC peer."""
    ip = ""
    if trusted_header is not None and metadata.get(trusted_header):
        ip = metadata[trusted_header].split(",")[-1].strip()
    if ip == "":
        match = _PEER.match(peer or "")
        ip = match.group("ip") if match else ""
    return Source(ip=ip, user_agent=metadata.get("user-agent", ""), device_id=device_id)


def token_pair(tokens: IssuedTokens) -> auth_identity_pb2.TokenPair:
    return auth_identity_pb2.TokenPair(
        access_token=tokens.access_token,
        access_token_expires_at=timestamp(tokens.access_expires_at),
        refresh_token=tokens.refresh_token,
        refresh_token_expires_at=timestamp(tokens.refresh_expires_at),
        token_type=TOKEN_TYPE,
        session_id=tokens.session_id,
    )


def step_up_token(token: AccessToken) -> auth_identity_pb2.StepUpToken:
    return auth_identity_pb2.StepUpToken(
        access_token=token.token, expires_at=timestamp(token.expires_at), amr=list(token.amr), acr=token.acr
    )


def organization(value: Organization) -> auth_organizations_pb2.Organization:
    return auth_organizations_pb2.Organization(
        organization_id=value.organization_id,
        slug=value.slug,
        display_name=value.display_name,
        created_at=timestamp(value.created_at),
    )


def policy(value: OrganizationPolicy) -> auth_organizations_pb2.OrganizationPolicy:
    return auth_organizations_pb2.OrganizationPolicy(
        mfa_required=value.mfa_required,
        password_min_length=value.password_min_length,
        session_max_lifetime=Duration(seconds=value.session_max_lifetime_s),
        session_idle_timeout=Duration(seconds=value.session_idle_timeout_s),
        customer_self_sign_up=value.customer_self_sign_up,
        updated_at=timestamp(value.updated_at),
    )


def policy_from(value: auth_organizations_pb2.OrganizationPolicy) -> OrganizationPolicy:
    return OrganizationPolicy(
        mfa_required=value.mfa_required,
        password_min_length=value.password_min_length,
        session_max_lifetime_s=duration_s(value.session_max_lifetime),
        session_idle_timeout_s=duration_s(value.session_idle_timeout),
        customer_self_sign_up=value.customer_self_sign_up,
    )


def member(view: PrincipalView) -> auth_members_pb2.Member:
    p = view.principal
    return auth_members_pb2.Member(
        member_id=p.principal_id,
        email=p.email or "",
        display_name=p.display_name,
        roles=[role_to_proto(role) for role in p.roles],
        status=status_to_proto(p.status),
        totp_enrolled=p.totp_enrolled,
        locked_until=timestamp(view.locked_until),
        created_at=timestamp(p.created_at),
        last_login_at=timestamp(p.last_login_at),
    )


def customer(view: PrincipalView) -> auth_customers_pb2.Customer:
    p = view.principal
    return auth_customers_pb2.Customer(
        customer_id=p.principal_id,
        email=p.email or "",
        display_name=p.display_name,
        external_reference=p.external_reference or "",
        status=status_to_proto(p.status),
        totp_enrolled=p.totp_enrolled,
        locked_until=timestamp(view.locked_until),
        created_at=timestamp(p.created_at),
        last_login_at=timestamp(p.last_login_at),
    )


def invitation(value: Invitation) -> auth_members_pb2.Invitation:
    return auth_members_pb2.Invitation(
        invitation_token=value.token, expires_at=timestamp(value.expires_at) if value.token else None
    )


def service_account(p: Principal) -> auth_service_accounts_pb2.ServiceAccount:
    return auth_service_accounts_pb2.ServiceAccount(
        service_account_id=p.principal_id,
        display_name=p.display_name,
        scopes=list(p.scopes),
        status=status_to_proto(p.status),
        created_at=timestamp(p.created_at),
        secret_rotated_at=timestamp(p.secret_rotated_at),
    )


def session(value: Session, current_session_id: str | None) -> auth_sessions_pb2.Session:
    return auth_sessions_pb2.Session(
        session_id=value.session_id,
        principal_id=value.principal_id,
        principal_kind=kind_to_proto(value.kind),
        device_id=value.device_id,
        amr=list(value.amr),
        user_agent=value.user_agent,
        source_ip=value.source_ip,
        current=value.session_id == current_session_id,
        created_at=timestamp(value.created_at),
        last_used_at=timestamp(value.last_used_at),
        expires_at=timestamp(value.expires_at),
    )


def jwk(value: Mapping[str, Any]) -> auth_keys_pb2.Jwk:
    return auth_keys_pb2.Jwk(
        kty=value["kty"], crv=value["crv"], x=value["x"], kid=value["kid"], alg=value["alg"], use=value["use"]
    )


def signing_key(value: SigningKeyRecord, now_s: float) -> auth_keys_pb2.SigningKey:
    return auth_keys_pb2.SigningKey(
        key_id=value.key_id,
        status=_KEY_STATUS[value.status_at(now_s)],
        public_key=jwk(public_jwk(value)),
        created_at=timestamp(value.created_at),
        retiring_at=timestamp(value.retiring_at),
        retired_at=timestamp(value.retired_at),
    )


def audit_event(value: AuditRecord) -> auth_audit_pb2.AuditEvent:
    return auth_audit_pb2.AuditEvent(
        audit_event_id=value.audit_event_id,
        event_type=auth_events_pb2.AuthEventType.Value("AUTH_EVENT_TYPE_" + value.event_type),
        principal_id=value.principal_id,
        actor_principal_id=value.actor_principal_id,
        source_ip=value.source_ip,
        trace_id=value.trace_id,
        details=value.details,
        occurred_at=timestamp(value.occurred_at),
    )


def event_type_name(value: int) -> str | None:
    if value == auth_events_pb2.AUTH_EVENT_TYPE_UNSPECIFIED:
        return None
    return auth_events_pb2.AuthEventType.Name(value).removeprefix("AUTH_EVENT_TYPE_")  # type: ignore[arg-type]


def token_claims(value: TokenPrincipal, audience: str) -> auth_identity_pb2.TokenClaims:
    return auth_identity_pb2.TokenClaims(
        principal_id=value.subject,
        principal_kind=kind_to_proto(value.kind),
        organization_id=value.organization_id,
        roles=[role_to_proto(role) for role in sorted(value.roles)],
        scopes=sorted(value.scopes),
        amr=list(value.amr),
        acr=value.acr,
        auth_time=timestamp(value.auth_time),
        issued_at=timestamp(value.issued_at),
        expires_at=timestamp(value.expires_at),
        token_id=value.token_id,
        session_id=value.session_id or "",
        device_id=value.device_id or "",
        audience=audience,
    )


def current_principal(value: CurrentPrincipal) -> auth_sessions_pb2.Principal:
    p = value.principal
    return auth_sessions_pb2.Principal(
        principal_id=p.principal_id,
        kind=kind_to_proto(p.kind),
        organization_id=value.organization.organization_id,
        organization_slug=value.organization.slug,
        email=p.email or "",
        display_name=p.display_name,
        roles=[role_to_proto(role) for role in token_roles(p)],
        scopes=list(p.scopes),
        totp_enrolled=p.totp_enrolled,
        recovery_codes_left=value.recovery_codes_left,
    )
