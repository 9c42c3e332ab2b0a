"""Auth's own settings, read once at start through the kit's ``Env`` (a missing or malformed one stops the process
with one line naming it)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.auth import limits
from services.kit.config import ConfigError, Env

# `make run`'s gateway serves http://localhost:8080; production sets its own domain and app origins.
WEBAUTHN_RP_ID_DEFAULT = "localhost"
WEBAUTHN_RP_NAME_DEFAULT = "Wallet"
WEBAUTHN_ORIGINS_DEFAULT = "http://localhost:8080"

MASTER_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class AuthSettings:
    # 32 bytes from AUTH_SIGNING_KEY_ENCRYPTION_KEY; every at-rest key of auth is derived from it (see sealing.py).
    master_key: bytes
    access_token_ttl_s: int
    argon2_memory_kib: int
    argon2_time_cost: int
    argon2_parallelism: int
    refresh_grace_s: int
    brute_force_delay_from_failures: int
    brute_force_lock_at_failures: int
    brute_force_lock_s: int
    source_delay_from_failures: int
    source_lock_at_failures: int
    # Header the gateway sets with the client address; unset means "use the gRPC peer" (never trust a header
    # nobody configured).
    trusted_client_ip_header: str | None
    service_account_secret_overlap_s: int
    # WebAuthn relying party: the passkeys' scope (a registrable domain) and the origins allowed to run ceremonies.
    webauthn_rp_id: str
    webauthn_rp_name: str
    webauthn_origins: tuple[str, ...]
    # The member-mail job (security notices to staff) and its dev outbox file; None = `$WALLET_RUN_DIR/mail/
    # outbox.jsonl`, resolved when the process knows its run directory.
    member_mail: bool = True
    mail_outbox: Path | None = None


def decode_master_key(value: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} must be base64url") from None
    if len(raw) != MASTER_KEY_BYTES:
        raise ConfigError(f"{name} must decode to {MASTER_KEY_BYTES} bytes, got {len(raw)}")
    return raw


def load_auth_settings(environ: Mapping[str, str] | None = None) -> AuthSettings:
    env = Env(environ)
    key_name = "AUTH_SIGNING_KEY_ENCRYPTION_KEY"
    secret = env.secret(key_name)
    assert secret is not None  # required=True raises instead
    lock_at = env.integer("AUTH_LOCKOUT_FAILURES", limits.BRUTE_FORCE_LOCK_AT_FAILURES, min_value=2)
    source_lock_at = env.integer("AUTH_SOURCE_LOCKOUT_FAILURES", limits.SOURCE_LOCK_AT_FAILURES, min_value=2)
    header = env.optional_string("AUTH_TRUSTED_CLIENT_IP_HEADER")
    return AuthSettings(
        master_key=decode_master_key(secret, key_name),
        access_token_ttl_s=env.integer(
            "AUTH_ACCESS_TOKEN_TTL_S",
            limits.ACCESS_TOKEN_TTL_S_DEFAULT,
            min_value=limits.ACCESS_TOKEN_TTL_S_MIN,
            max_value=limits.ACCESS_TOKEN_TTL_S_MAX,
        ),
        argon2_memory_kib=env.integer(
            "AUTH_ARGON2_MEMORY_KIB", limits.ARGON2_MEMORY_KIB_MIN, min_value=limits.ARGON2_MEMORY_KIB_MIN
        ),
        argon2_time_cost=env.integer(
            "AUTH_ARGON2_TIME_COST", limits.ARGON2_TIME_COST_MIN, min_value=limits.ARGON2_TIME_COST_MIN
        ),
        argon2_parallelism=env.integer(
            "AUTH_ARGON2_PARALLELISM", limits.ARGON2_PARALLELISM_MIN, min_value=limits.ARGON2_PARALLELISM_MIN
        ),
        refresh_grace_s=env.integer("AUTH_REFRESH_GRACE_S", limits.REFRESH_GRACE_S_DEFAULT, max_value=300),
        brute_force_delay_from_failures=env.integer(
            "AUTH_DELAY_FROM_FAILURES", limits.BRUTE_FORCE_DELAY_FROM_FAILURES, min_value=1, max_value=lock_at - 1
        ),
        brute_force_lock_at_failures=lock_at,
        brute_force_lock_s=env.integer("AUTH_LOCKOUT_S", limits.BRUTE_FORCE_LOCK_S, min_value=1),
        source_delay_from_failures=env.integer(
            "AUTH_SOURCE_DELAY_FROM_FAILURES",
            limits.SOURCE_DELAY_FROM_FAILURES,
            min_value=1,
            max_value=source_lock_at - 1,
        ),
        source_lock_at_failures=source_lock_at,
        trusted_client_ip_header=header.lower() if header is not None else None,
        service_account_secret_overlap_s=env.integer(
            "AUTH_SERVICE_ACCOUNT_SECRET_OVERLAP_S", limits.SERVICE_ACCOUNT_SECRET_OVERLAP_S
        ),
        webauthn_rp_id=env.string("AUTH_WEBAUTHN_RP_ID", WEBAUTHN_RP_ID_DEFAULT),
        webauthn_rp_name=env.string("AUTH_WEBAUTHN_RP_NAME", WEBAUTHN_RP_NAME_DEFAULT),
        webauthn_origins=_origins(env.string("AUTH_WEBAUTHN_ORIGINS", WEBAUTHN_ORIGINS_DEFAULT)),
        member_mail=env.flag("AUTH_MEMBER_MAIL", True),
        mail_outbox=_optional_path(env.optional_string("AUTH_MAIL_OUTBOX")),
    )


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(origin.strip() for origin in value.split(",") if origin.strip())
    for origin in origins:
        if not origin.startswith(("https://", "http://localhost", "android:apk-key-hash:")):
            raise ConfigError(
                f"AUTH_WEBAUTHN_ORIGINS: {origin!r} must be https (http only for localhost) or an Android app origin"
            )
    if not origins:
        raise ConfigError("AUTH_WEBAUTHN_ORIGINS: at least one origin is required")
    return origins
