"""Every ledger method, under every role and token state, enforces its declared policy (tests/support/authorization_matrix)."""

from __future__ import annotations

import grpc
import pytest

from tests.integration.ledger.conftest import LedgerHarness
from tests.support.authorization_matrix import Claims, Matrix

pytestmark = pytest.mark.integration


async def test_every_ledger_method_enforces_its_policy(ledger: LedgerHarness) -> None:
    async def mint(claims: Claims) -> str:
        return ledger.key.mint(**claims)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.server.port}") as channel:
        matrix = Matrix(channel, mint)
        await matrix.check_service("wallet.ledger.v1.LedgerService")
    assert matrix.calls > 0
    assert not matrix.failures, matrix.report()
