"""The dev overlay's Secrets, made fresh at install time and never committed:

    python -m deploy.dev_secrets --namespace wallet-dev | kubectl create -f -

and, once auth is up, each platform client's Secret from auth's ``bootstrap-platform-client`` output (the scopes
are devstack's ``PLATFORM_CLIENTS``, the same ``make run`` grants):

    kubectl -n wallet-dev exec deploy/auth -- python -m services.auth bootstrap-platform-client --name ledger \
        --scope risk.assessments.assess --scope contacts.directory.read \
      | python -m deploy.dev_secrets --namespace wallet-dev --platform-client ledger | kubectl apply -f -

Keys are 32 random bytes as base64url (what auth and contacts decode); the Postgres superuser password is random
and each service's ``DATABASE_URL`` Secret carries it for its own ``wallet_<svc>`` database on the in-cluster
Postgres. ``kubectl create`` (not ``apply``) refuses to overwrite a Secret that exists: a new KEK or blind-index
key would make the vault's stored data unreadable, and a new password would no longer match the database's.
Production Secrets hold the same names and keys but come from the platform's secret manager (deploy/README.md).
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
from collections.abc import Mapping, Sequence

import yaml

from deploy.render import Document
from devstack.errors import DevstackError
from devstack.platform_clients import PLATFORM_CLIENTS, parse_bootstrap_output

KEY_BYTES = 32
PASSWORD_BYTES = 24
DATABASE_SERVICES = ("auth", "ledger", "contacts", "risk")
POSTGRES_USER = "wallet"
POSTGRES_HOST = "postgres:5432"
REDIS_URL = "redis://redis:6379/0"
# Secret name -> the keys holding 32-byte keys, mounted as files and named by each process's *_FILE settings.
KEY_SECRETS: dict[str, tuple[str, ...]] = {
    "auth-keys": ("signing-key-encryption-key",),
    "contacts-keys": ("kek", "blind-index-key", "backup-key"),
    "ledger-keys": ("export-pseudonym-key",),
    "gateway-keys": ("rate-limit-key",),
}


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def secret(name: str, namespace: str, data: Mapping[str, str]) -> Document:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "wallet"}},
        "stringData": dict(data),
    }


def dev_secrets(namespace: str) -> list[Document]:
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    documents = [
        secret("postgres-superuser", namespace, {"password": password}),
        secret("wallet-redis", namespace, {"url": REDIS_URL}),
    ]
    for service in DATABASE_SERVICES:
        url = f"postgresql://{POSTGRES_USER}:{password}@{POSTGRES_HOST}/wallet_{service}"
        documents.append(secret(f"{service}-database", namespace, {"url": url}))
    for name, keys in KEY_SECRETS.items():
        documents.append(secret(name, namespace, {key: new_key() for key in keys}))
    return documents


def platform_client_secret(name: str, namespace: str, bootstrap_output: str) -> Document:
    """``<name>-platform-client`` from the ``client_id=``/``client_secret=`` lines auth's bootstrap prints."""
    client_id, client_secret = parse_bootstrap_output(bootstrap_output)
    return secret(f"{name}-platform-client", namespace, {"client-id": client_id, "client-secret": client_secret})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.dev_secrets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--namespace", default="wallet-dev")
    parser.add_argument(
        "--platform-client", choices=sorted(PLATFORM_CLIENTS), help="read bootstrap-platform-client output on stdin"
    )
    args = parser.parse_args(argv)
    if args.platform_client is None:
        documents = dev_secrets(args.namespace)
    else:
        try:
            documents = [platform_client_secret(args.platform_client, args.namespace, sys.stdin.read())]
        except DevstackError as err:
            print(f"dev_secrets: {err}", file=sys.stderr)
            return 1
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
