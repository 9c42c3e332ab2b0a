"""Every risk method, under every role and token state, enforces its declared policy (tests/support/authorization_matrix)."""

from __future__ import annotations

import pytest

from tests.integration.risk.conftest import RiskStack
from tests.support.authorization_matrix import Claims, Matrix

pytestmark = pytest.mark.integration


async def test_every_risk_method_enforces_its_policy(risk_stack: RiskStack) -> None:
    async def mint(claims: Claims) -> str:
        return risk_stack.tokens.key.mint(**claims)

    matrix = Matrix(risk_stack.channel, mint)
    await matrix.check_service("wallet.risk.v1.RiskService")
    assert matrix.calls > 0
    assert not matrix.failures, matrix.report()
