"""Random, truncated and malformed request bytes to every risk method never end in INTERNAL or UNKNOWN."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.risk.conftest import RiskStack
from tests.support.authorization_matrix import Claims
from tests.support.fuzz_service import fuzz_service

pytestmark = pytest.mark.integration


async def test_hostile_bytes_to_every_risk_method(risk_stack: RiskStack) -> None:
    async def mint(claims: Claims) -> str:
        return risk_stack.tokens.key.mint(**claims)

    calls, failures = await fuzz_service(risk_stack.channel, "wallet.risk.v1.RiskService", mint, str(uuid.uuid4()))
    assert calls > 0
    assert not failures, f"{len(failures)} of {calls} calls failed:\n" + "\n".join(failures)
