"""A real contacts server for the bench, in its own process: the service's own servicer, interceptors, Postgres and
Redis, with a software signing key whose tokens it trusts (there is no auth service in the bench).

``python -m bench.contacts_server`` reads ``DATABASE_URL``, ``REDIS_URL``, ``GRPC_PORT`` (with ``GRPC_SO_REUSEPORT``
several processes share it), the ``CONTACTS_*`` keys, ``BENCH_ORGANIZATION_ID`` and ``BENCH_SIGNING_SEED`` (hex
Ed25519 seed: every process trusts the same key), prints one JSON line
``{"port", "organization_id", "admin_token", "directory_token"}`` and serves until SIGTERM or stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time

import uvloop
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.contacts.config import load_contacts_config
from services.contacts.server import ContactsApp
from services.kit.config import load_service_config
from services.kit.testing import TEST_AUDIENCE, TEST_ISSUER, SigningKey, start_test_server
from services.kit.token_cache import CachedTokenVerifier
from services.kit.tokens import StaticJwksSource

TOKEN_LIFETIME_S = 3_600


async def serve() -> None:
    config = load_service_config("contacts")
    app = ContactsApp(load_contacts_config(config.run_dir))
    key = SigningKey(kid="bench")
    key.private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(os.environ["BENCH_SIGNING_SEED"]))
    # The same verification cache as ``python -m services.contacts`` (services/kit/token_cache.py).
    verifier = CachedTokenVerifier(
        StaticJwksSource([key.public_jwk]), audience=TEST_AUDIENCE, issuer=TEST_ISSUER, refresh_min_interval_s=0.0
    )
    server = await start_test_server(config, app.build, verifier)
    organization_id = os.environ["BENCH_ORGANIZATION_ID"]
    now = int(time.time())
    admin = key.mint(org=organization_id, roles=["admin"], exp=now + TOKEN_LIFETIME_S)
    directory = key.mint(
        org=organization_id, pty="service", roles=[], scope="contacts.directory.read", exp=now + TOKEN_LIFETIME_S
    )
    print(
        json.dumps(
            {
                "port": server.port,
                "organization_id": organization_id,
                "admin_token": admin,
                "directory_token": directory,
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(serve())
