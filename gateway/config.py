"""The gateway's settings, read once at start from the environment (``services.kit.config.Env``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.kit.config import METRICS_PORT_OFFSET, Env, default_addr

DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 50050
# Largest JSON request body accepted; a 1,000-transfer batch is far below it.
MAX_BODY_BYTES_DEFAULT = 1024 * 1024
# Deepest JSON nesting accepted: our deepest message is a handful of levels; deeper input is an attack.
MAX_JSON_DEPTH_DEFAULT = 32
# Deadline given to an upstream call when the client names none, and the most a client may ask for.
DEFAULT_DEADLINE_S = 10.0
MAX_DEADLINE_S = 30.0
# Rate limits (GCRA): sustained requests per second and burst, per token subject and per client IP.
RATE_PER_SUBJECT_PER_S_DEFAULT = 50.0
BURST_PER_SUBJECT_DEFAULT = 100
RATE_PER_IP_PER_S_DEFAULT = 100.0
BURST_PER_IP_DEFAULT = 200

UPSTREAM_SERVICES = ("auth", "ledger", "contacts", "risk")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    http_host: str
    http_port: int
    grpc_host: str
    grpc_port: int
    metrics_port: int
    upstreams: Mapping[str, str]
    redis_url: str | None
    jwt_audience: str
    jwt_issuer: str
    jwks_refresh_min_interval_s: float
    max_body_bytes: int
    max_json_depth: int
    reject_unknown_fields: bool
    default_deadline_s: float
    max_deadline_s: float
    rate_per_subject_per_s: float
    burst_per_subject: int
    rate_per_ip_per_s: float
    burst_per_ip: int
    # HMAC key that hashes subjects and IPs into rate-limit keys (never stored in clear); None = per-process key.
    rate_limit_key: str | None
    cors_allowed_origins: tuple[str, ...]


def load_gateway_config(environ: Mapping[str, str] | None = None) -> GatewayConfig:
    env = Env(environ)
    grpc_port = env.port("GATEWAY_GRPC_PORT", DEFAULT_GRPC_PORT)
    metrics_default = grpc_port + METRICS_PORT_OFFSET if grpc_port != 0 else 0
    origins = env.optional_string("GATEWAY_CORS_ORIGINS")
    redis_url = env.optional_string("REDIS_URL")
    if redis_url is not None:
        redis_url = env.url("REDIS_URL", schemes=("redis", "rediss", "unix"))
    return GatewayConfig(
        http_host=env.string("GATEWAY_HTTP_HOST", "127.0.0.1"),
        http_port=env.port("GATEWAY_HTTP_PORT", DEFAULT_HTTP_PORT),
        grpc_host=env.string("GATEWAY_GRPC_HOST", "127.0.0.1"),
        grpc_port=grpc_port,
        metrics_port=env.port("METRICS_PORT", metrics_default),
        upstreams={name: env.string(f"{name.upper()}_ADDR", default_addr(name)) for name in UPSTREAM_SERVICES},
        redis_url=redis_url,
        jwt_audience=env.string("JWT_AUDIENCE", "wallet"),
        jwt_issuer=env.string("JWT_ISSUER", "wallet-auth"),
        jwks_refresh_min_interval_s=env.number("JWKS_REFRESH_MIN_INTERVAL_S", 5.0),
        max_body_bytes=env.integer("GATEWAY_MAX_BODY_BYTES", MAX_BODY_BYTES_DEFAULT, min_value=1),
        max_json_depth=env.integer("GATEWAY_MAX_JSON_DEPTH", MAX_JSON_DEPTH_DEFAULT, min_value=1),
        reject_unknown_fields=env.flag("GATEWAY_REJECT_UNKNOWN_FIELDS", True),
        default_deadline_s=env.number("GATEWAY_DEFAULT_DEADLINE_S", DEFAULT_DEADLINE_S, min_value=0.001),
        max_deadline_s=env.number("GATEWAY_MAX_DEADLINE_S", MAX_DEADLINE_S, min_value=0.001),
        rate_per_subject_per_s=env.number("GATEWAY_RATE_PER_SUBJECT_PER_S", RATE_PER_SUBJECT_PER_S_DEFAULT),
        burst_per_subject=env.integer("GATEWAY_BURST_PER_SUBJECT", BURST_PER_SUBJECT_DEFAULT, min_value=1),
        rate_per_ip_per_s=env.number("GATEWAY_RATE_PER_IP_PER_S", RATE_PER_IP_PER_S_DEFAULT),
        burst_per_ip=env.integer("GATEWAY_BURST_PER_IP", BURST_PER_IP_DEFAULT, min_value=1),
        rate_limit_key=env.secret("GATEWAY_RATE_LIMIT_KEY", required=False),
        cors_allowed_origins=tuple(o.strip() for o in origins.split(",") if o.strip()) if origins else (),
    )
