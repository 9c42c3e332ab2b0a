"""The ledger keeps its promises across crashes (issue 12).

Clients send transfers, each with its own id, and retry the same request until they get an answer, while the
ledger process is SIGKILLed and restarted on the same port several times. Afterwards every transfer a client saw
succeed exists exactly once and nothing else does, balances add up, invariants and the hash chain hold, and every
transfer's event reached the stream (tests/integration/reliability/transfer_load.py).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.reliability.conftest import Ledger
from tests.integration.reliability.transfer_load import (
    Tally,
    assert_nothing_lost,
    kill_and_restart,
    open_and_fund,
    retrying_client,
    stream_tail,
)
from tests.support.soak import scaled

pytestmark = pytest.mark.integration

KILLS = scaled(3, 12)
CLIENTS = 8
TRANSFERS_PER_CLIENT = scaled(30, 150)


async def test_transfers_survive_sigkill_exactly_once(ledger: Ledger, redis_server_url: str) -> None:
    stream_start = await stream_tail(redis_server_url)
    funded = await open_and_fund(ledger)
    tally = Tally()
    # The clients keep sending until the last crash has happened, however fast the ledger answers.
    crashes_done = asyncio.Event()
    load = asyncio.gather(
        *(
            retrying_client(ledger, funded.accounts, seed, TRANSFERS_PER_CLIENT, tally, until=crashes_done)
            for seed in range(CLIENTS)
        )
    )
    try:
        kills = await kill_and_restart(ledger, load, seed=99, kills=KILLS)
    finally:
        crashes_done.set()
    await load
    assert kills == KILLS, "the load finished before every crash happened"
    assert ledger.process.starts == KILLS + 1
    assert tally.retries > 0, "no call was interrupted: the crashes did not hit the load"
    assert tally.sent >= CLIENTS * TRANSFERS_PER_CLIENT
    assert len(tally.succeeded) + len(tally.declined) == tally.sent
    await assert_nothing_lost(ledger, funded, tally, redis_server_url, stream_start)
