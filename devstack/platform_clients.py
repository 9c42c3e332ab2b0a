"""The suite's platform service accounts for `make run`: the ledger assesses transfers with risk (its risk gate), risk
resolves held transfers in the ledger (ResolveTransferReview) and, for complaints, reads disputed transfers, refunds
them (ReverseTransfer) and notifies customers through the contacts vault.

After the migrations, each client is created — or, on a later run, its secret rotated — with auth's own
``python -m services.auth bootstrap-platform-client`` against auth's database. The printed secret is captured here
(never written to a log), stored under ``<run dir>/secrets/`` (mode 0600) and handed to the service as
``<SVC>_CLIENT_SECRET_FILE`` with ``<SVC>_CLIENT_ID``, as a Kubernetes Secret would be. A client id or secret the
developer already set wins.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.errors import DevstackError

# Service → the platform-only scopes its client holds.
PLATFORM_CLIENTS: Mapping[str, tuple[str, ...]] = {
    # The risk gate's Assess calls; PayByPhone's contacts.ResolvePhone; card secrets in the vault.
    "ledger": (
        "risk.assessments.assess",
        "contacts.directory.read",
        "contacts.card_secrets.write",
        "contacts.card_secrets.reveal",
    ),
    # Resolving reviewed transfers; complaints: the disputed transfer and its accounts, refunds, customer notices.
    "risk": (
        "ledger.reviews.approve",
        "ledger.transfers.read",
        "ledger.accounts.read",
        "ledger.reversals.write",
        "contacts.notifications.write",
    ),
}
BOOTSTRAP_TIMEOUT_S = 60


def bootstrap_argv(name: str) -> list[str]:
    scopes = [part for scope in PLATFORM_CLIENTS[name] for part in ("--scope", scope)]
    return [sys.executable, "-m", "services.auth", "bootstrap-platform-client", "--name", name, *scopes]


def parse_bootstrap_output(stdout: str) -> tuple[str, str]:
    """(client id, client secret) from the command's ``client_id=`` / ``client_secret=`` lines."""
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition("=")
        if key in ("client_id", "client_secret") and value:
            values[key] = value.strip()
    if set(values) != {"client_id", "client_secret"}:
        raise DevstackError("auth's bootstrap-platform-client printed no client id and secret")
    return values["client_id"], values["client_secret"]


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    os.replace(temporary, path)  # a service reading it never sees half a secret


def ensure_platform_clients(
    *, auth_env: Mapping[str, str], base: Mapping[str, str], run_dir: Path, repo_dir: Path
) -> dict[str, dict[str, str]]:
    """Per service, the environment entries that give it its platform client. The clients are made in parallel
    (each is a Python start-up and one transaction), so the step costs one command's time."""
    wanted = [name for name in PLATFORM_CLIENTS if f"{name.upper()}_CLIENT_ID" not in base]  # else the developer's
    running = {
        name: subprocess.Popen(
            bootstrap_argv(name),
            env=dict(auth_env),
            cwd=repo_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in wanted
    }
    env_by_service: dict[str, dict[str, str]] = {}
    try:
        for name, process in running.items():
            try:
                stdout, stderr = process.communicate(timeout=BOOTSTRAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise DevstackError(
                    f"creating the {name} platform client took over {BOOTSTRAP_TIMEOUT_S} s; is auth's database up?"
                ) from None
            if process.returncode != 0:
                raise DevstackError(
                    f"creating the {name} platform client failed (exit {process.returncode}); see the lines below",
                    details=tuple(stderr.strip().splitlines()[-10:]),
                )
            client_id, secret = parse_bootstrap_output(stdout)
            path = run_dir / "secrets" / f"{name}_client_secret"
            _write_secret(path, secret)
            prefix = name.upper()
            env_by_service[name] = {f"{prefix}_CLIENT_ID": client_id, f"{prefix}_CLIENT_SECRET_FILE": str(path)}
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return env_by_service
