"""``python -m services.auth bootstrap-platform-client --name ledger --scope risk.assessments.assess ...``

Creates (or, when it exists, rotates the secret of and sets the scopes of) a platform service account: the suite's own services calling
each other with platform-only permissions. It lives in the reserved ``platform`` organization, may name the tenant
it acts for in ``IssueServiceToken``, and its client id is derived from its name (UUIDv5), so re-running the command
for the same name rotates instead of duplicating. The client secret is printed once and stored only hashed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence

from services.auth import audit, domain
from services.auth.domain import Status
from services.auth.permissions import declared_permissions
from services.auth.proto_enums import kind_to_proto
from services.auth.sealing import sha256
from services.auth.service_accounts import new_client_secret
from services.auth.store import AuthStore
from services.kit import db
from services.kit.config import ConfigError, Env
from services.kit.errors import FieldViolation, InvalidArgument
from services.kit.tokens import PRINCIPAL_KIND_SERVICE
from wallet.auth.v1 import auth_events_pb2 as events

PLATFORM_ORGANIZATION_ID = "00000000-0000-0000-0000-000000000000"
CLIENT_ID_NAMESPACE = uuid.UUID("5f0c3c2e-6f1b-4a4e-9a57-2b1f3f1d8a10")
# Existing platform clients keep their previous secret this long after a re-run, so running services can switch.
PLATFORM_SECRET_OVERLAP_S = 3600


def platform_client_id(name: str) -> str:
    return str(uuid.uuid5(CLIENT_ID_NAMESPACE, name))


async def bootstrap_platform_client(store: AuthStore, name: str, scopes: Sequence[str]) -> tuple[str, str, bool]:
    """(client id, client secret, created) — created False when an existing client's secret was rotated."""
    violations: list[FieldViolation] = []
    domain.check_display_name(name, "name", violations)
    domain.check_scopes(scopes, declared_permissions(), "scope", violations)
    if violations:
        raise InvalidArgument("; ".join(f"{v.field}: {v.description}" for v in violations))
    client_id = platform_client_id(name)
    secret = new_client_secret()
    now_s = time.time()
    async with store.transaction() as tx:
        existing = await tx.get_principal(PLATFORM_ORGANIZATION_ID, client_id, for_update=True)
        if existing is None:
            account = domain.Principal(
                organization_id=PLATFORM_ORGANIZATION_ID,
                principal_id=client_id,
                kind=PRINCIPAL_KIND_SERVICE,
                email=None,
                display_name=name,
                external_reference=None,
                roles=(),
                scopes=tuple(sorted(set(scopes))),
                status=Status.ACTIVE,
                password_hash=None,
                totp_enrolled=False,
                totp_last_step=0,
                created_at=now_s,
                last_login_at=None,
                secret_rotated_at=now_s,
            )
            await tx.insert_principal(account, client_secret_hash=sha256(secret))
            payload: events.PrincipalCreated | events.ServiceAccountSecretRotated = events.PrincipalCreated(
                principal_id=client_id,
                principal_kind=kind_to_proto(PRINCIPAL_KIND_SERVICE),
            )
        else:
            await tx.set_client_secret(client_id, sha256(secret), now_s + PLATFORM_SECRET_OVERLAP_S, now_s)
            # A newer release may grant the client more (or fewer) platform permissions: the run's list wins.
            wanted = tuple(sorted(set(scopes)))
            if tuple(sorted(existing.scopes)) != wanted:
                await tx.set_scopes(client_id, wanted)
            payload = events.ServiceAccountSecretRotated(service_account_id=client_id)
        await audit.record(tx, payload, organization_id=PLATFORM_ORGANIZATION_ID, principal_id=client_id, now_s=now_s)
    return client_id, secret, existing is None


async def _run(database_url: str, name: str, scopes: Sequence[str]) -> tuple[str, str, bool]:
    pool = await db.create_pool(database_url, min_size=1, max_size=1, budget_s=10)
    try:
        return await bootstrap_platform_client(AuthStore(lambda: pool), name, scopes)
    finally:
        await pool.close()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.auth bootstrap-platform-client")
    parser.add_argument("--name", required=True, help="the calling service, e.g. ledger")
    parser.add_argument("--scope", action="append", required=True, help="a permission to grant (repeat)")
    args = parser.parse_args(argv)
    try:
        database_url = Env().url("DATABASE_URL", schemes=("postgresql", "postgres"))
        client_id, secret, created = asyncio.run(_run(database_url, args.name, args.scope))
    except ConfigError as err:
        print(f"auth: configuration error: {err}", file=sys.stderr)
        return 2
    except InvalidArgument as err:
        print(f"auth: {err.message}", file=sys.stderr)
        return 2
    print(f"client_id={client_id}")
    print(f"client_secret={secret}")
    print("created" if created else "secret rotated (the previous one works for one more hour)", file=sys.stderr)
    return 0
