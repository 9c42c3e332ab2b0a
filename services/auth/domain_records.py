"""Domain records of sessions, MFA challenges, signing keys and audit events (frozen, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Source:
    """Where a call came from: the client address (gRPC peer or the configured gateway header) and user agent."""

    ip: str = ""
    user_agent: str = ""
    device_id: str = ""


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    organization_id: str
    principal_id: str
    kind: str
    device_id: str
    amr: tuple[str, ...]
    enrolment_only: bool
    user_agent: str
    source_ip: str
    auth_time: float
    created_at: float
    last_used_at: float
    expires_at: float
    revoked_at: float | None

    def is_live(self, now_s: float, idle_timeout_s: int) -> bool:
        return self.revoked_at is None and self.expires_at > now_s and now_s - self.last_used_at <= idle_timeout_s


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: bytes
    session_id: str
    rotated_at: float | None
    successor_hash: bytes | None


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    mfa_challenge_id: str
    organization_id: str
    principal_id: str
    device_id: str
    user_agent: str
    source_ip: str
    expires_at: float
    failed_attempts: int
    used_at: float | None


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    key_id: str
    status: str  # "active" | "retiring"; "retired" is derived from retired_at
    public_x: str
    private_key_sealed: bytes
    created_at: float
    retiring_at: float | None
    retired_at: float | None

    def status_at(self, now_s: float) -> str:
        if self.retired_at is not None and self.retired_at <= now_s:
            return "retired"
        return self.status


@dataclass(frozen=True, slots=True)
class AuditRecord:
    audit_event_id: str
    organization_id: str
    event_type: str
    principal_id: str
    actor_principal_id: str
    source_ip: str
    trace_id: str
    occurred_at: float
    details: dict[str, str] = field(default_factory=dict)
