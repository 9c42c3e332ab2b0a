"""Typed configuration from the environment, failing fast with one line that names the variable.

Secrets may be given inline (``X``) or as a path in ``X_FILE`` (Kubernetes Secret volumes); the file wins when both
are set. A missing or malformed setting raises ``ConfigError`` at start, before the server binds a port.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PORT_MAX = 65_535
METRICS_PORT_OFFSET = 1_000
KEY_BYTES = 32


class ConfigError(Exception):
    """A setting is missing or malformed. The message is one line naming the variable; it never contains the value
    of a secret."""


class Env:
    """Reads typed settings from a mapping (``os.environ`` by default, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, name: str, default: str | None = None) -> str:
        value = self._raw(name)
        if value is not None:
            return value
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default

    def optional_string(self, name: str) -> str | None:
        return self._raw(name)

    def integer(
        self, name: str, default: int | None = None, *, min_value: int = 0, max_value: int | None = None
    ) -> int:
        raw = self._raw(name)
        if raw is None:
            if default is None:
                raise ConfigError(f"{name} is required but not set")
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < min_value or (max_value is not None and value > max_value):
            bounds = f">= {min_value}" if max_value is None else f"between {min_value} and {max_value}"
            raise ConfigError(f"{name} must be {bounds}, got {value}")
        return value

    def number(self, name: str, default: float, *, min_value: float = 0.0) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < min_value:
            raise ConfigError(f"{name} must be >= {min_value}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, min_value=0, max_value=PORT_MAX)

    def url(self, name: str, *, schemes: tuple[str, ...], default: str | None = None) -> str:
        value = self.string(name, default)
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            # The URL may hold a password: name the variable and the scheme only.
            raise ConfigError(f"{name} must be a URL with scheme {' or '.join(schemes)}, got scheme {parts.scheme!r}")
        return value

    def secret(self, name: str, *, required: bool = True) -> str | None:
        """A secret from ``NAME_FILE`` (a path) or ``NAME``; the value is never echoed in errors."""
        file_name = f"{name}_FILE"
        path = self._raw(file_name)
        if path is not None:
            try:
                content = Path(path).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ConfigError(f"{file_name} points to an unreadable file: {err.strerror}") from None
            if content == "":
                raise ConfigError(f"{file_name} points to an empty file")
            return content
        value = self._raw(name)
        if value is None and required:
            raise ConfigError(f"{name} (or {file_name}) is required but not set")
        return value


def decode_key(raw: str, name: str) -> bytes:
    """A 32-byte key given as base64url (padding optional) or 64 hex digits; ``name`` is the setting, for the
    error (which never echoes the value)."""
    text = raw.strip()
    candidates: list[bytes] = []
    if len(text) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(text))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    for candidate in candidates:
        if len(candidate) == KEY_BYTES:
            return candidate
    raise ConfigError(f"{name} must be a {KEY_BYTES}-byte key as base64url or hex")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What every service needs to start; services extend it with their own settings."""

    service_name: str
    grpc_host: str
    grpc_port: int
    metrics_port: int
    database_url: str
    redis_url: str
    auth_addr: str
    run_dir: Path
    drain_grace_s: float
    startup_budget_s: float
    jwt_audience: str
    jwt_issuer: str
    jwks_refresh_min_interval_s: float
    # Several processes may share the gRPC port (SO_REUSEPORT): one Python process serves from one core.
    so_reuseport: bool = False


DEFAULT_GRPC_PORTS: dict[str, int] = {
    "gateway": 50050,
    "auth": 50051,
    "ledger": 50052,
    "contacts": 50053,
    "risk": 50054,
}


def default_addr(service: str) -> str:
    return f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}"


def load_service_config(service_name: str, environ: Mapping[str, str] | None = None) -> ServiceConfig:
    env = Env(environ)
    grpc_port = env.port("GRPC_PORT", DEFAULT_GRPC_PORTS[service_name])
    # Port 0 (tests) picks a free port for gRPC; metrics then picks its own free port too.
    metrics_default = grpc_port + METRICS_PORT_OFFSET if grpc_port != 0 else 0
    return ServiceConfig(
        service_name=service_name,
        grpc_host=env.string("GRPC_HOST", "127.0.0.1"),
        grpc_port=grpc_port,
        metrics_port=env.port("METRICS_PORT", metrics_default),
        database_url=env.url("DATABASE_URL", schemes=("postgresql", "postgres")),
        redis_url=env.url("REDIS_URL", schemes=("redis", "rediss", "unix")),
        auth_addr=env.string("AUTH_ADDR", default_addr("auth")),
        run_dir=Path(env.string("WALLET_RUN_DIR", ".run")),
        drain_grace_s=env.number("DRAIN_GRACE_S", 10.0),
        startup_budget_s=env.number("STARTUP_BUDGET_S", 30.0),
        jwt_audience=env.string("JWT_AUDIENCE", "wallet"),
        jwt_issuer=env.string("JWT_ISSUER", "wallet-auth"),
        jwks_refresh_min_interval_s=env.number("JWKS_REFRESH_MIN_INTERVAL_S", 5.0),
        so_reuseport=env.flag("GRPC_SO_REUSEPORT", False),
    )
