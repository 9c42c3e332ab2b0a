"""Dependency faults under load (issue 12): the ledger's own Postgres restarted, and its Redis stopped.

Each test gives the ledger process a private server (the embedded ones ``make run`` uses) so it can be stopped
without disturbing anything else. While it is away, calls that need it get ``UNAVAILABLE`` with ``RetryInfo``
(never INTERNAL), clients retry the same request, the process recovers by itself, and afterwards nothing is lost
or duplicated (tests/integration/reliability/transfer_load.py).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devstack.databases import database_url_for, ensure_databases_async
from devstack.postgres_server import EmbeddedPostgres, start_embedded_postgres
from devstack.redis_server import start_embedded_redis
from services.kit.status import ErrorDetails
from tests.integration.reliability.conftest import CHANNEL_OPTIONS, Ledger, LedgerLauncher
from tests.integration.reliability.transfer_load import (
    Tally,
    assert_nothing_lost,
    open_and_fund,
    retrying_client,
    send_until_answered,
    stream_tail,
)
from tests.support.service_process import REPO_ROOT
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_service_pb2_grpc, ledger_transfers_pb2

pytestmark = pytest.mark.integration

CLIENTS = 6
TRANSFERS_PER_CLIENT = 40
OUTAGE_S = 1.5
PROBE_TIMEOUT_S = 10.0


@pytest.fixture
def private_dir() -> Iterator[Path]:
    # Under the repository's .run/test, not pytest's tmp_path: as root the embedded Postgres runs as its own system
    # user, which cannot enter root's private temporary directories.
    path = REPO_ROOT / ".run" / "test" / f"faults-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def private_postgres(private_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = start_embedded_postgres(private_dir / "postgres")
    try:
        yield server
    finally:
        start_embedded_postgres(private_dir / "postgres").stop() if not server.owned else server.stop()


class Probe:
    """One transfer sent while a dependency is down, then (as any client would) again until it is answered."""

    def __init__(self, ledger: Ledger, debit: str, credit: str) -> None:
        self.ledger = ledger
        self.request = ledger_transfers_pb2.CreateTransferRequest(
            transfer_id=str(uuid.uuid4()),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=money_pb2.Money(currency="EUR", amount_minor=1),
        )

    def _channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.ledger.process.port}", options=CHANNEL_OPTIONS)

    async def first_answer(self) -> ErrorDetails | None:
        """What the client hears during the outage (None when the transfer succeeded)."""
        async with self._channel() as channel:
            stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
            try:
                await stub.CreateTransfer(self.request, metadata=self.ledger.metadata(), timeout=PROBE_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                return ErrorDetails.from_rpc_error(error)
        return None

    async def settle(self, tally: Tally) -> None:
        async with self._channel() as channel:
            stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
            code = await send_until_answered(stub, self.ledger, self.request, tally)
        assert code == grpc.StatusCode.OK
        r = self.request
        tally.succeeded[r.transfer_id] = (r.debit_account_id, r.credit_account_id, r.amount.amount_minor)


async def test_postgres_restart_mid_load(
    private_postgres: EmbeddedPostgres, private_dir: Path, ledger_launcher: LedgerLauncher, redis_server_url: str
) -> None:
    await ensure_databases_async(private_postgres.url, ["wallet_ledger"])
    ledger = await ledger_launcher.start(database_url_for(private_postgres.url, "ledger"), redis_server_url)
    stream_start = await stream_tail(redis_server_url)
    funded = await open_and_fund(ledger)
    tally = Tally()
    # The clients keep sending until Postgres is back, however fast the ledger answers.
    outage_over = asyncio.Event()
    load = asyncio.gather(
        *(
            retrying_client(ledger, funded.accounts, seed, TRANSFERS_PER_CLIENT, tally, until=outage_over)
            for seed in range(CLIENTS)
        )
    )
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_postgres.stop)
        probe = Probe(ledger, funded.accounts[0], funded.accounts[1])
        answer = await probe.first_answer()
        assert answer is not None, "a transfer succeeded while Postgres was down"
        assert answer.code == grpc.StatusCode.UNAVAILABLE, answer
        assert answer.retry_after_s is not None, "UNAVAILABLE without RetryInfo"
        await asyncio.sleep(OUTAGE_S)
        restarted = await asyncio.to_thread(start_embedded_postgres, private_dir / "postgres")
        assert restarted.url == private_postgres.url
    finally:
        outage_over.set()
    await load
    await probe.settle(tally)
    assert ledger.process.starts == 1, "the ledger had to be restarted to recover"
    assert tally.retries > 0, "no call met the outage"
    await assert_nothing_lost(ledger, funded, tally, redis_server_url, stream_start)


async def test_redis_outage_mid_load_then_relay_catches_up(
    private_dir: Path, ledger_launcher: LedgerLauncher, database_url: str
) -> None:
    redis = start_embedded_redis(private_dir / "redis")
    try:
        ledger = await ledger_launcher.start(database_url, redis.url)
        stream_start = await stream_tail(redis.url)
        funded = await open_and_fund(ledger)
        tally = Tally()
        outage_over = asyncio.Event()
        load = asyncio.gather(
            *(
                retrying_client(ledger, funded.accounts, seed, TRANSFERS_PER_CLIENT, tally, until=outage_over)
                for seed in range(CLIENTS)
            )
        )
        try:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(redis.stop)
            probe = Probe(ledger, funded.accounts[0], funded.accounts[1])
            answer = await probe.first_answer()
            # Transfers do not need Redis: they commit with their events in the outbox while it is away.
            assert answer is None or (answer.code == grpc.StatusCode.UNAVAILABLE and answer.retry_after_s is not None)
            await asyncio.sleep(OUTAGE_S)
            redis = await asyncio.to_thread(start_embedded_redis, private_dir / "redis", port=redis.port)
        finally:
            outage_over.set()
        await load
        await probe.settle(tally)
        assert ledger.process.starts == 1
        await assert_nothing_lost(ledger, funded, tally, redis.url, stream_start)
    finally:
        redis.stop()
