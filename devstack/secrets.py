"""Development secrets for `make run`: random keys generated once under ``<run dir>/secrets/`` (mode 0600, never
committed) and handed to each service as ``<NAME>_FILE``, exactly as a Kubernetes Secret volume would be.

A service declares the secrets it needs by adding them to ``DEV_SECRETS`` under its own name prefix; a value the
developer already set (``NAME`` or ``NAME_FILE``) wins.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

SECRET_BYTES = 32

# Secret name -> the service that reads it. Values are 32 random bytes, base64url without padding.
DEV_SECRETS: dict[str, str] = {
    "AUTH_SIGNING_KEY_ENCRYPTION_KEY": "auth",
    "CONTACTS_KEK": "contacts",
    "CONTACTS_BLIND_INDEX_KEY": "contacts",
    "CONTACTS_BACKUP_KEY": "contacts",
    "LEDGER_EXPORT_PSEUDONYM_KEY": "ledger",
    "GATEWAY_RATE_LIMIT_KEY": "gateway",
}


def _ensure_secret_file(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = base64.urlsafe_b64encode(os.urandom(SECRET_BYTES)).decode().rstrip("=")
    # O_EXCL: two runners racing never overwrite each other's key.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")


def secret_env(service: str, *, base: Mapping[str, str], run_dir: Path) -> dict[str, str]:
    """``NAME_FILE`` entries for the service's dev secrets that the environment does not already provide."""
    env: dict[str, str] = {}
    for name, owner in DEV_SECRETS.items():
        if owner != service or name in base or f"{name}_FILE" in base:
            continue
        path = run_dir / "secrets" / name.lower()
        # Another runner may have created it a moment ago; its key is as good as ours.
        with contextlib.suppress(FileExistsError):
            _ensure_secret_file(path)
        env[f"{name}_FILE"] = str(path)
    return env
