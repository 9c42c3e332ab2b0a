"""Random, truncated and malformed request bytes to every ledger method never end in INTERNAL or UNKNOWN."""

from __future__ import annotations

import grpc
import pytest

from tests.integration.ledger.conftest import LedgerHarness
from tests.support.authorization_matrix import Claims
from tests.support.fuzz_service import fuzz_service

pytestmark = pytest.mark.integration


async def test_hostile_bytes_to_every_ledger_method(ledger: LedgerHarness) -> None:
    async def mint(claims: Claims) -> str:
        return ledger.key.mint(**claims)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{ledger.server.port}") as channel:
        calls, failures = await fuzz_service(channel, "wallet.ledger.v1.LedgerService", mint, ledger.organization_id)
    assert calls > 0
    assert not failures, f"{len(failures)} of {calls} calls failed:\n" + "\n".join(failures)
