"""Auth's settings: the master key's shape, token lifetime bounds, argon2 floors, the trusted header."""

from __future__ import annotations

import base64

import pytest

from services.auth.config import load_auth_settings
from services.kit.config import ConfigError

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")


def test_defaults() -> None:
    settings = load_auth_settings({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY})
    assert settings.master_key == bytes(range(32))
    assert settings.access_token_ttl_s == 600
    assert (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism) == (19456, 2, 1)
    assert settings.refresh_grace_s == 30
    assert (settings.brute_force_delay_from_failures, settings.brute_force_lock_at_failures) == (5, 10)
    assert settings.brute_force_lock_s == 900
    assert settings.trusted_client_ip_header is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "AUTH_SIGNING_KEY_ENCRYPTION_KEY"),
        ({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": "c2hvcnQ"}, "32 bytes"),
        ({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY, "AUTH_ACCESS_TOKEN_TTL_S": "299"}, "AUTH_ACCESS_TOKEN_TTL_S"),
        ({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY, "AUTH_ACCESS_TOKEN_TTL_S": "901"}, "AUTH_ACCESS_TOKEN_TTL_S"),
        ({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY, "AUTH_ARGON2_MEMORY_KIB": "19455"}, "AUTH_ARGON2_MEMORY_KIB"),
        ({"AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY, "AUTH_ARGON2_TIME_COST": "1"}, "AUTH_ARGON2_TIME_COST"),
        (
            {"AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY, "AUTH_LOCKOUT_FAILURES": "5", "AUTH_DELAY_FROM_FAILURES": "5"},
            "AUTH_DELAY_FROM_FAILURES",
        ),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as raised:
        load_auth_settings(environ)
    assert KEY not in str(raised.value)


def test_bounds_are_accepted() -> None:
    settings = load_auth_settings(
        {
            "AUTH_SIGNING_KEY_ENCRYPTION_KEY": KEY,
            "AUTH_ACCESS_TOKEN_TTL_S": "900",
            "AUTH_TRUSTED_CLIENT_IP_HEADER": "X-Forwarded-For",
        }
    )
    assert settings.access_token_ttl_s == 900
    assert settings.trusted_client_ip_header == "x-forwarded-for"
