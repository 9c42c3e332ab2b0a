"""Random, truncated and malformed request bytes to every auth method never end in INTERNAL or UNKNOWN."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.auth.conftest import RunningAuth
from tests.support.authorization_matrix import Claims
from tests.support.fuzz_service import fuzz_service

pytestmark = pytest.mark.integration


async def test_hostile_bytes_to_every_auth_method(auth: RunningAuth) -> None:
    async def mint(claims: Claims) -> str:
        return await auth.app.core.key_ring.sign(claims)

    calls, failures = await fuzz_service(auth.channel, "wallet.auth.v1.AuthService", mint, str(uuid.uuid4()))
    assert calls > 0
    assert not failures, f"{len(failures)} of {calls} calls failed:\n" + "\n".join(failures)
