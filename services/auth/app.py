"""Wiring of one auth process: settings, store, key ring, brute-force guard, the use-case core, auth's own token
verifier (reading its own key table, no RPC to itself), the servicer, the outbox relay and the member-mail job."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from services.auth import limits
from services.auth.brute_force import LoginGuard
from services.auth.config import AuthSettings
from services.auth.core import AuthCore
from services.auth.domain import Thresholds
from services.auth.mail import FileMailSink, MailSink
from services.auth.member_mail_claims import NoticeClaims
from services.auth.member_mail_job import member_mail_consumer
from services.auth.passwords import Passwords
from services.auth.retention import auth_retention_job, load_auth_retention
from services.auth.server import SERVICE_NAME, AuthServer
from services.auth.service_member_mail import MemberMailer
from services.auth.signing import KeyRing, OwnJwksSource
from services.auth.store import AuthStore
from services.auth.store_member_mail import MemberAddresses
from services.kit.config import Env
from services.kit.grpc_server import Registration, Runtime
from services.kit.outbox import OutboxRelay
from services.kit.retention import RetentionPolicy
from services.kit.service_main import BackgroundJob
from services.kit.tokens import TokenVerifier
from wallet.auth.v1 import auth_service_pb2_grpc

# Auth's own verifier reads a local table, so a new key id may be looked up often; still bounded.
OWN_JWKS_REFRESH_MIN_INTERVAL_S = 1.0
MAIL_OUTBOX_RELATIVE = Path("mail") / "outbox.jsonl"


class AuthApplication:
    def __init__(
        self,
        runtime: Runtime,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = time.time,
        retention: RetentionPolicy | None = None,
        mail_sink: MailSink | None = None,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.retention = retention or load_auth_retention(Env({}))
        self.settings = settings
        outbox = settings.mail_outbox or runtime.config.run_dir / MAIL_OUTBOX_RELATIVE
        self.mail_sink: MailSink = mail_sink or FileMailSink(outbox)
        self.store = AuthStore(lambda: runtime.pool)
        max_ttl_s = max(settings.access_token_ttl_s, limits.SERVICE_TOKEN_TTL_S, limits.STEP_UP_TOKEN_TTL_S)
        self.key_ring = KeyRing(self.store, settings.master_key, clock=clock, max_token_ttl_s=max_ttl_s)
        window_s = limits.BRUTE_FORCE_WINDOW_S
        guard = LoginGuard(
            lambda: runtime.redis,
            self.store,
            settings.master_key,
            account=Thresholds(
                settings.brute_force_delay_from_failures,
                settings.brute_force_lock_at_failures,
                settings.brute_force_lock_s,
                window_s,
            ),
            source=Thresholds(
                settings.source_delay_from_failures,
                settings.source_lock_at_failures,
                settings.brute_force_lock_s,
                window_s,
            ),
            clock=clock,
        )
        self.verifier = TokenVerifier(
            OwnJwksSource(lambda: self.key_ring),
            audience=runtime.config.jwt_audience,
            issuer=runtime.config.jwt_issuer,
            refresh_min_interval_s=OWN_JWKS_REFRESH_MIN_INTERVAL_S,
        )
        self.core = AuthCore(
            store=self.store,
            settings=settings,
            passwords=Passwords(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
            ),
            key_ring=self.key_ring,
            guard=guard,
            clock=clock,
            issuer=runtime.config.jwt_issuer,
            audience=runtime.config.jwt_audience,
            keys_changed=self.verifier.refresh,
        )

    def registrations(self) -> list[Registration]:
        servicer = AuthServer(self.core, self.verifier)
        return [Registration(SERVICE_NAME, auth_service_pb2_grpc.add_AuthServiceServicer_to_server, servicer)]

    def member_mailer(self) -> MemberMailer:
        return MemberMailer(
            MemberAddresses(lambda: self.runtime.pool), NoticeClaims(lambda: self.runtime.redis), self.mail_sink
        )

    def background_jobs(self) -> Sequence[BackgroundJob]:
        retention = auth_retention_job(
            lambda: self.runtime.pool, self.retention, lambda: datetime.fromtimestamp(self.clock(), UTC)
        )
        jobs = [OutboxRelay("auth", self.runtime.pool, self.runtime.redis).run(), retention.run()]
        if self.settings.member_mail:
            jobs.append(member_mail_consumer(self.runtime.redis, self.member_mailer()).run())
        return jobs
