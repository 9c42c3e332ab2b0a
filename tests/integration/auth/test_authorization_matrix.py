"""Every auth method, under every role and token state, enforces its declared policy (tests/support/authorization_matrix)."""

from __future__ import annotations

import pytest

from tests.integration.auth.conftest import RunningAuth
from tests.support.authorization_matrix import Claims, Matrix

pytestmark = pytest.mark.integration


async def test_every_auth_method_enforces_its_policy(auth: RunningAuth) -> None:
    async def mint(claims: Claims) -> str:
        return await auth.app.core.key_ring.sign(claims)

    matrix = Matrix(auth.channel, mint)
    await matrix.check_service("wallet.auth.v1.AuthService")
    assert matrix.calls > 0
    assert not matrix.failures, matrix.report()
