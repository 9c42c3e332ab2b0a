"""``walletctl keys rotate signing|kek``: auth's token-signing keys, or the vault's key-encryption key with a live
progress bar of the background rewrap (polled through ``GetRewrapStatus``)."""

from __future__ import annotations

import asyncio
import enum
import uuid
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.output import JsonFlag, as_dict, console, execute, print_json
from cli.session import CliError, Session
from services.kit.config import Env
from wallet.auth.v1 import auth_keys_pb2
from wallet.contacts.v1 import contacts_keys_pb2

app = typer.Typer(help="Rotate signing and encryption keys.", no_args_is_help=True)

REWRAP_POLL_INTERVAL_S = 0.5
REWRAP_WAIT_S_DEFAULT = 3600.0


class KeyKind(enum.StrEnum):
    signing = "signing"
    kek = "kek"


async def _rotate_signing() -> auth_keys_pb2.RotateSigningKeysResponse:
    async with Session(Env()) as session:
        request = auth_keys_pb2.RotateSigningKeysRequest(request_id=str(uuid.uuid4()))
        return await session.call("auth", session.auth.RotateSigningKeys, request)


async def _rotate_kek(wait_s: float, show_progress: bool) -> contacts_keys_pb2.KeyJob:
    async with Session(Env()) as session:
        request = contacts_keys_pb2.RotateKekRequest(request_id=str(uuid.uuid4()))
        job = (await session.call("contacts", session.contacts.RotateKek, request)).key_job
        if wait_s <= 0:
            return job
        with Progress(
            TextColumn("rewrapping data keys"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show_progress,
        ) as progress:
            bar = progress.add_task("rewrap", total=max(job.items_total, 1), completed=job.items_done)
            polls_max = max(1, int(wait_s / REWRAP_POLL_INTERVAL_S))
            for _ in range(polls_max):
                progress.update(bar, total=max(job.items_total, 1), completed=job.items_done)
                if job.state != contacts_keys_pb2.KEY_JOB_STATE_RUNNING:
                    return job
                await asyncio.sleep(REWRAP_POLL_INTERVAL_S)
                status = contacts_keys_pb2.GetRewrapStatusRequest(key_job_id=job.key_job_id)
                job = (await session.call("contacts", session.contacts.GetRewrapStatus, status)).key_job
        raise CliError(
            f"rewrap {job.key_job_id} still running after {wait_s:.0f}s ({job.items_done}/{job.items_total})"
        )


@app.command("rotate")
def rotate(
    kind: Annotated[KeyKind, typer.Argument(help="signing: auth's token keys; kek: the vault's key-encryption key")],
    wait_s: Annotated[
        float, typer.Option("--wait-s", help="kek: how long to follow the rewrap (0: don't)")
    ] = REWRAP_WAIT_S_DEFAULT,
    as_json: JsonFlag = False,
) -> None:
    """Rotate a key. Needs a platform operator (scopes auth.keys.admin / contacts.keys.admin, contacts.keys.read)."""
    if kind is KeyKind.signing:
        signing = execute(_rotate_signing())
        if as_json:
            print_json(as_dict(signing))
        else:
            console.print(
                f"signing key [green]{signing.active_key.key_id}[/green] is active; "
                f"{signing.previous_key.key_id or 'none'} retires once its last token expires"
            )
        return
    job = execute(_rotate_kek(wait_s, show_progress=not as_json))
    if as_json:
        print_json(as_dict(job))
        return
    state = contacts_keys_pb2.KeyJobState.Name(job.state).removeprefix("KEY_JOB_STATE_")
    console.print(
        f"KEK v{job.from_key_version} -> v{job.to_key_version}: {state}, {job.items_done}/{job.items_total} data keys"
        + (f" ({job.error})" if job.error else "")
    )
    if job.state == contacts_keys_pb2.KEY_JOB_STATE_FAILED:
        raise typer.Exit(1)
