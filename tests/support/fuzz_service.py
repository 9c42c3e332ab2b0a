"""Sends hostile payloads (tests/support/proto_fuzz.py) to every method of one running service."""

from __future__ import annotations

import os
import random

import grpc

from services.kit.grpc_server import MAX_RECEIVE_MESSAGE_BYTES
from services.kit.policy import PLATFORM_ONLY_PERMISSIONS
from tests.support.authorization_matrix import Minter, claims_for
from tests.support.proto_fuzz import hostile_payloads
from tests.support.raw_calls import bearer, call_raw, declared_methods
from tests.support.soak import scaled

# `make test` sends 12 payloads per method, `make soak` 150; FUZZ_CASES_PER_METHOD and FUZZ_SEED override.
CASES_PER_METHOD = int(os.environ.get("FUZZ_CASES_PER_METHOD", str(scaled(12, 150))))
DEFAULT_SEED = int(os.environ.get("FUZZ_SEED", "12"))
NEVER = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED})


async def fuzz_service(
    channel: grpc.aio.Channel, service_full_name: str, mint: Minter, organization_id: str, *, seed: int = DEFAULT_SEED
) -> tuple[int, list[str]]:
    """(calls made, failures). The caller is an owner with a fresh step-up who also holds every platform-only
    permission as a scope, so that hostile bytes get past authorization and reach the handlers."""
    rng = random.Random(seed)
    claims = claims_for(organization_id, "owner", step_up=True, scope=" ".join(sorted(PLATFORM_ONLY_PERMISSIONS)))
    metadata = bearer(await mint(claims))
    calls, failures = 0, []
    methods = declared_methods(service_full_name)
    # One message over the server's receive limit: refused by gRPC before any handler runs.
    calls += 1
    oversized = await call_raw(channel, methods[0], b"\x0a" + b"\xff" * (MAX_RECEIVE_MESSAGE_BYTES + 16), metadata)
    if oversized.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
        failures.append(f"{methods[0].full_method} with an oversized message: {oversized}")
    for method in methods:
        for payload in hostile_payloads(method.input_type, rng, CASES_PER_METHOD):
            calls += 1
            outcome = await call_raw(channel, method, payload, metadata)
            if outcome.code in NEVER:
                failures.append(f"{method.full_method} with {payload.hex()[:120]}: {outcome}")
    return calls, failures
