"""What every auth use case shares: the store, settings, clock, password hasher, key ring, brute-force guard,
sealers, and the token-issuing steps (access tokens, sessions with their first refresh token)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.auth import domain, limits
from services.auth.brute_force import LoginGuard
from services.auth.config import AuthSettings
from services.auth.domain import Principal, TokenSubject
from services.auth.domain_records import Session, Source
from services.auth.passwords import Passwords
from services.auth.sealing import (
    PURPOSE_RECOVERY_CODES,
    PURPOSE_REFRESH_SUCCESSOR,
    PURPOSE_TOTP,
    KeyedHash,
    Sealer,
    sha256,
)
from services.auth.service import AuthStorePort, AuthTransaction
from services.auth.signing import KeyRing
from services.kit.errors import IdempotencyKeyReused, Unauthenticated
from services.kit.ids import uuid7
from services.kit.request_context import current_principal
from services.kit.tokens import Principal as CallerPrincipal

REFRESH_TOKEN_BYTES = 32
TOKEN_TYPE = "Bearer"  # noqa: S105


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float
    session_id: str


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: float
    amr: tuple[str, ...]
    acr: str


@dataclass
class AuthCore:
    store: AuthStorePort
    settings: AuthSettings
    passwords: Passwords
    key_ring: KeyRing
    guard: LoginGuard
    clock: Callable[[], float]
    issuer: str
    audience: str
    # Called after this process rotated the signing keys (auth's own verifier re-reads its key table).
    keys_changed: Callable[[], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self.totp_sealer = Sealer(self.settings.master_key, PURPOSE_TOTP)
        self.recovery_hash = KeyedHash(self.settings.master_key, PURPOSE_RECOVERY_CODES)
        self._successor_hash = KeyedHash(self.settings.master_key, PURPOSE_REFRESH_SUCCESSOR)

    # --- helpers ----------------------------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        # argon2 is CPU-bound by design: keep it off the event loop.
        return await asyncio.to_thread(self.passwords.hash, password)

    async def verify_password(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.passwords.verify, password_hash, password)

    def successor_of(self, refresh_token: str) -> str:
        """The successor of a refresh token is derived from it with a server key, so concurrent refreshes inside
        the grace window get the same successor back although only hashes are stored."""
        return base64.urlsafe_b64encode(self._successor_hash.digest(refresh_token)).decode().rstrip("=")

    async def claim_request(
        self, tx: AuthTransaction, organization_id: str, request_id: str, operation: str, target_id: str, *parts: str
    ) -> bool:
        """True when this request id was already applied with the same content (a replay); raises when it was
        used for something else."""
        digest = hashlib.sha256("\x1f".join((operation, target_id, *parts)).encode()).hexdigest()
        earlier = await tx.claim_request(organization_id, request_id, operation, target_id, digest)
        if earlier is None:
            return False
        if earlier[0] != operation or earlier[1] != target_id:
            raise IdempotencyKeyReused("request_id", "operation")
        if earlier[2] != digest:
            raise IdempotencyKeyReused("request_id", "content")
        return True

    # --- tokens -----------------------------------------------------------------------------------------------

    async def mint(self, subject: TokenSubject, *, ttl_s: int, acr: str | None = None) -> AccessToken:
        now_s = int(self.clock())
        chosen_acr = acr if acr is not None else domain.acr_for(subject.amr)
        claims = domain.access_claims(
            subject,
            issuer=self.issuer,
            audience=self.audience,
            token_id=str(uuid.uuid4()),
            now_s=now_s,
            ttl_s=ttl_s,
            acr=chosen_acr,
        )
        token = await self.key_ring.sign(claims)
        return AccessToken(token, now_s + ttl_s, subject.amr, chosen_acr)

    def subject(self, principal: Principal, session: Session, trusted_device_id: str | None) -> TokenSubject:
        if session.enrolment_only:
            roles: tuple[str, ...] = ()
            scopes: tuple[str, ...] = domain.ENROLMENT_ONLY_SCOPES
        else:
            roles, scopes = domain.token_roles(principal), ()
        return TokenSubject(
            principal_id=principal.principal_id,
            organization_id=principal.organization_id,
            kind=principal.kind,
            roles=roles,
            scopes=scopes,
            amr=session.amr,
            auth_time_s=int(session.auth_time),
            session_id=session.session_id,
            device_id=trusted_device_id,
        )

    async def trusted_device_id(self, tx: AuthTransaction, principal_id: str, device_id: str) -> str | None:
        """The session's device id when it is one of the principal's ACTIVE registered devices (then tokens carry
        it as `did`); None for an unregistered installation id or a revoked device."""
        if device_id == "":
            return None
        device = await tx.get_device(principal_id, device_id)
        return device_id if device is not None and device.is_active else None

    async def open_session(
        self,
        tx: AuthTransaction,
        principal: Principal,
        *,
        amr: tuple[str, ...],
        source: Source,
        session_lifetime_s: int,
        enrolment_only: bool,
    ) -> IssuedTokens:
        now_s = self.clock()
        session = Session(
            session_id=str(uuid7(int(now_s * 1000))),
            organization_id=principal.organization_id,
            principal_id=principal.principal_id,
            kind=principal.kind,
            device_id=source.device_id,
            amr=amr,
            enrolment_only=enrolment_only,
            user_agent=source.user_agent[: limits.USER_AGENT_LENGTH_MAX],
            source_ip=source.ip,
            auth_time=now_s,
            created_at=now_s,
            last_used_at=now_s,
            expires_at=now_s + session_lifetime_s,
            revoked_at=None,
        )
        await tx.insert_session(session)
        refresh_token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
        await tx.insert_refresh_token(sha256(refresh_token), session.session_id, now_s)
        await tx.set_last_login(principal.principal_id, now_s)
        trusted_device_id = await self.trusted_device_id(tx, principal.principal_id, source.device_id)
        if trusted_device_id is not None:
            await tx.touch_device(principal.principal_id, trusted_device_id, now_s)
        return await self.tokens_for(principal, session, refresh_token, trusted_device_id)

    async def tokens_for(
        self, principal: Principal, session: Session, refresh_token: str, trusted_device_id: str | None
    ) -> IssuedTokens:
        subject = self.subject(principal, session, trusted_device_id)
        access = await self.mint(subject, ttl_s=self.settings.access_token_ttl_s)
        return IssuedTokens(access.token, access.expires_at, refresh_token, session.expires_at, session.session_id)


def caller() -> CallerPrincipal:
    """The authenticated principal of this call (the kit's interceptor set it)."""
    principal = current_principal()
    if principal is None:
        raise Unauthenticated("missing bearer access token")
    return principal
