"""``walletctl ledger verify-chain`` and ``walletctl ledger proof get|verify``: the ledger's tamper evidence.

``proof verify`` checks a Merkle inclusion proof offline with ``services/ledger/proof.py`` (hashlib only), from a
file an auditor was given or fetched from the ledger by transfer id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format
from rich.table import Table

from cli.output import (
    EXIT_CHECK_FAILED,
    JsonFlag,
    OrganizationOption,
    as_dict,
    console,
    execute,
    fail,
    print_json,
    reported,
)
from cli.session import CliError, Session
from services.kit.config import Env
from services.ledger.proof import verify_proof
from wallet.ledger.v1 import ledger_integrity_pb2

app = typer.Typer(help="The ledger's hash chain and inclusion proofs.", no_args_is_help=True)
proof_app = typer.Typer(help="Merkle inclusion proofs of transfers.", no_args_is_help=True)
app.add_typer(proof_app, name="proof")


async def _verify_chain(
    organization_id: str | None, start: int, end: int
) -> ledger_integrity_pb2.VerifyChainResponse:
    async with Session(Env(), organization_id=organization_id) as session:
        request = ledger_integrity_pb2.VerifyChainRequest(start_sequence=start, end_sequence=end)
        return await session.call("ledger", session.ledger.VerifyChain, request)


@app.command("verify-chain")
def verify_chain(
    start: Annotated[int, typer.Option("--start", help="first sequence (0: the first entry)")] = 0,
    end: Annotated[int, typer.Option("--end", help="last sequence (0: the head)")] = 0,
    organization_id: OrganizationOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the tenant's hash chain and block roots; exits 1 and names the first broken entry if any."""
    reply = execute(_verify_chain(organization_id, start, end))
    if as_json:
        print_json(as_dict(reply) | {"intact": reply.intact})
    elif reply.intact:
        console.print(
            f"[green]chain intact[/green]: {reply.entries_checked} entries, {reply.blocks_checked} sealed blocks, "
            f"head {reply.last_sequence} ({reply.last_hash.hex()})"
        )
    else:
        console.print(f"[red]chain BROKEN[/red] at sequence {reply.first_broken_sequence}")
    if not reply.intact:
        raise typer.Exit(EXIT_CHECK_FAILED)


def load_proof(text: str) -> ledger_integrity_pb2.InclusionProof:
    """A proof from JSON: an ``InclusionProof`` or a ``GetInclusionProofResponse`` (bytes as base64, as printed
    by ``proof get --json``)."""
    try:
        document: Any = json.loads(text)
    except ValueError as err:
        raise CliError(f"the proof is not JSON: {err}") from None
    if isinstance(document, dict) and isinstance(document.get("proof"), dict):
        document = document["proof"]
    try:
        return json_format.ParseDict(document, ledger_integrity_pb2.InclusionProof())
    except json_format.ParseError as err:
        raise CliError(f"the proof is not an InclusionProof: {err}") from None


def check_proof(proof: ledger_integrity_pb2.InclusionProof) -> bool:
    return verify_proof(
        proof.canonical_entry,
        proof.previous_hash,
        proof.entry_hash,
        proof.leaf_index,
        proof.leaf_count,
        list(proof.audit_path),
        proof.merkle_root,
    )


async def _fetch_proof(
    organization_id: str | None, transfer_id: str, sequence: int
) -> ledger_integrity_pb2.InclusionProof:
    async with Session(Env(), organization_id=organization_id) as session:
        request = ledger_integrity_pb2.GetInclusionProofRequest(transfer_id=transfer_id, sequence=sequence)
        reply = await session.call("ledger", session.ledger.GetInclusionProof, request)
        return reply.proof


@proof_app.command("get")
def get_proof(
    transfer_id: Annotated[str, typer.Argument(help="the transfer to prove")],
    sequence: Annotated[int, typer.Option("--sequence", help="which of its entries (0: the latest)")] = 0,
    organization_id: OrganizationOption = None,
) -> None:
    """Fetch a transfer's inclusion proof and print it as JSON (hand it to an auditor; `proof verify --file`)."""
    proof = execute(_fetch_proof(organization_id, transfer_id, sequence))
    print_json(as_dict(proof))


@proof_app.command("verify")
def verify(
    proof_file: Annotated[Path | None, typer.Option("--file", help="a proof as JSON ('-' for stdin)")] = None,
    transfer_id: Annotated[
        str | None, typer.Option("--transfer-id", help="fetch the proof from the ledger instead")
    ] = None,
    sequence: Annotated[int, typer.Option("--sequence", help="with --transfer-id: which entry (0: the latest)")] = 0,
    organization_id: OrganizationOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify an inclusion proof offline: entry hash, chain link and Merkle path up to the block's root."""
    if (proof_file is None) == (transfer_id is None):
        raise fail("give exactly one of --file and --transfer-id")
    if proof_file is not None:
        try:
            text = typer.get_text_stream("stdin").read() if str(proof_file) == "-" else proof_file.read_text()
        except OSError as err:
            raise fail(f"cannot read {proof_file}: {err.strerror}") from None
        with reported():
            proof = load_proof(text)
    else:
        assert transfer_id is not None
        proof = execute(_fetch_proof(organization_id, transfer_id, sequence))
    valid = check_proof(proof)
    if as_json:
        print_json(
            {
                "valid": valid,
                "transfer_id": proof.transfer_id,
                "sequence": proof.sequence,
                "block_number": proof.block_number,
                "merkle_root": proof.merkle_root.hex(),
            }
        )
    else:
        table = Table("field", "value", show_header=False)
        table.add_row("transfer", proof.transfer_id)
        table.add_row("entry", f"sequence {proof.sequence}, leaf {proof.leaf_index} of {proof.leaf_count}")
        table.add_row("block", f"{proof.block_number}, root {proof.merkle_root.hex()}")
        table.add_row("result", "[green]valid[/green]" if valid else "[red]INVALID[/red]")
        console.print(table)
    if not valid:
        raise typer.Exit(EXIT_CHECK_FAILED)
