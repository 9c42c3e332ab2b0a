"""A Python load generator for Assess calls that must all differ (h2load repeats one body, which Assess treats as
an idempotent replay): ``python -m bench.risk_load --port P --token-file F --in-flight 64 --duration-s 10``.

Runs in its own process with uvloop and a few channels; every call carries a new assessment id: accounts paying
their usual payee amounts like their history (windows seeded by the bench), so each one does the full work (features, rules, anomaly score,
decision write, record). Prints one JSON line: calls, errors, calls/s, p50/p99 in ms. Being Python, it spends CPU
the server would otherwise get on this 2-core machine: the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from pathlib import Path

import grpc
import uvloop

from bench.latency import p50_p99_ms
from wallet.common.v1 import money_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_service_pb2_grpc

CHANNELS = 4
# Like the seeded history (bench/sections/risk.py), so the traffic looks like ordinary payments.
AMOUNT_MINOR_MIN = 1_000
AMOUNT_MINOR_MAX = 3_000
DEADLINE_S = 5.0


def _request(pairs: list[list[str]], rng: random.Random) -> risk_assessments_pb2.AssessRequest:
    """Ordinary traffic: an account paying its usual payee an amount like its history (mostly ALLOW)."""
    debit, credit = rng.choice(pairs)
    return risk_assessments_pb2.AssessRequest(
        assessment_id=str(uuid.uuid4()),
        context=risk_assessments_pb2.AssessmentContext(
            transfer_id=str(uuid.uuid4()),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=money_pb2.Money(currency="EUR", amount_minor=rng.randint(AMOUNT_MINOR_MIN, AMOUNT_MINOR_MAX)),
            channel=risk_assessments_pb2.CHANNEL_MOBILE_APP,
            device_id=f"device-{debit[:8]}",
        ),
    )


async def _drive(
    port: int, token: str, pairs: list[list[str]], in_flight: int, duration_s: float
) -> dict[str, float]:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
    stubs = [risk_service_pb2_grpc.RiskServiceStub(channel) for channel in channels]
    metadata = (("authorization", f"Bearer {token}"),)
    latencies_us: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration_s

    async def worker(index: int) -> None:
        nonlocal errors
        rng = random.Random(index)
        stub = stubs[index % CHANNELS]
        while time.monotonic() < deadline:
            request = _request(pairs, rng)
            began = time.perf_counter()
            try:
                await stub.Assess(request, metadata=metadata, timeout=DEADLINE_S)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies_us.append((time.perf_counter() - began) * 1e6)

    began = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(in_flight)))
    elapsed_s = time.monotonic() - began
    for channel in channels:
        await channel.close()
    p50_ms, p99_ms = p50_p99_ms(latencies_us)
    return {
        "calls": len(latencies_us),
        "errors": errors,
        "per_s": len(latencies_us) / elapsed_s,
        "p50_ms": p50_ms or 0.0,
        "p99_ms": p99_ms or 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.risk_load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    # JSON [[debit account, its usual payee], ...]
    parser.add_argument("--pairs-file", type=Path, required=True)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--duration-s", type=float, default=10.0)
    args = parser.parse_args()
    token = args.token_file.read_text(encoding="utf-8").strip()
    pairs = json.loads(args.pairs_file.read_text(encoding="utf-8"))
    result = uvloop.run(_drive(args.port, token, pairs, args.in_flight, args.duration_s))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
