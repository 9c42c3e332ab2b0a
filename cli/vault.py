"""``walletctl vault backup|restore``: the contacts vault's encrypted backups (written and read by the vault itself,
in its backup directory; walletctl only asks and reports)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from cli.output import JsonFlag, as_dict, console, execute, print_json
from cli.session import Session
from services.kit.config import Env
from wallet.contacts.v1 import contacts_keys_pb2

app = typer.Typer(help="Back up and restore the contacts vault.", no_args_is_help=True)


def _show(title: str, backup: contacts_keys_pb2.Backup) -> None:
    table = Table("field", "value", title=title, show_header=False)
    table.add_row("backup id", backup.backup_id)
    table.add_row("location", backup.location)
    table.add_row("sha256", backup.sha256)
    table.add_row("size", f"{backup.size_bytes} bytes")
    table.add_row("contents", f"{backup.contact_count} contacts, {backup.card_secret_count} card secrets")
    table.add_row("backup key", f"v{backup.backup_key_version}")
    console.print(table)


async def _backup() -> contacts_keys_pb2.Backup:
    async with Session(Env()) as session:
        request = contacts_keys_pb2.CreateBackupRequest(backup_id=str(uuid.uuid4()))
        return (await session.call("contacts", session.contacts.CreateBackup, request)).backup


async def _restore(location: str, sha256: str) -> contacts_keys_pb2.Backup:
    async with Session(Env()) as session:
        request = contacts_keys_pb2.RestoreBackupRequest(
            location=location, sha256=sha256, request_id=str(uuid.uuid4())
        )
        return (await session.call("contacts", session.contacts.RestoreBackup, request)).backup


@app.command("backup")
def backup(as_json: JsonFlag = False) -> None:
    """Write an encrypted, integrity-checked backup; prints where, and the SHA-256 that restore needs."""
    written = execute(_backup())
    if as_json:
        print_json(as_dict(written))
    else:
        _show("backup written", written)


@app.command("restore")
def restore(
    location: Annotated[str, typer.Argument(help="the location `vault backup` printed")],
    sha256: Annotated[str, typer.Option("--sha256", help="the SHA-256 `vault backup` printed")],
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into an empty vault (refused when the vault holds data)."""
    restored = execute(_restore(location, sha256))
    if as_json:
        print_json(as_dict(restored))
    else:
        _show("backup restored", restored)
