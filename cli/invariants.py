"""``walletctl invariants``: run the ledger's invariant check now (the periodic job exports the same as gauges)."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.output import EXIT_CHECK_FAILED, JsonFlag, OrganizationOption, as_dict, console, execute, print_json
from cli.session import Session
from services.kit.config import Env
from wallet.ledger.v1 import ledger_integrity_pb2


async def _check(organization_id: str | None) -> ledger_integrity_pb2.CheckInvariantsResponse:
    async with Session(Env(), organization_id=organization_id) as session:
        request = ledger_integrity_pb2.CheckInvariantsRequest()
        return await session.call("ledger", session.ledger.CheckInvariants, request)


def invariants(organization_id: OrganizationOption = None, as_json: JsonFlag = False) -> None:
    """Check debits = credits per currency, balance rules and chain coverage for a tenant; exits 1 when broken."""
    reply = execute(_check(organization_id))
    if as_json:
        print_json(as_dict(reply) | {"intact": reply.intact})
    else:
        totals = Table("currency", "posted debits (minor)", "posted credits (minor)", title="posted totals")
        for row in reply.totals:
            totals.add_row(row.currency, str(row.posted_debits_minor), str(row.posted_credits_minor))
        console.print(totals)
        if reply.intact:
            console.print("[green]every invariant holds[/green]")
        else:
            broken = Table("invariant", "currency", "account", "transfer", "detail", title="[red]violations[/red]")
            for violation in reply.violations:
                kind = ledger_integrity_pb2.InvariantKind.Name(violation.kind).removeprefix("INVARIANT_KIND_")
                broken.add_row(
                    kind, violation.currency, violation.account_id, violation.transfer_id, violation.detail
                )
            console.print(broken)
    if not reply.intact:
        raise typer.Exit(EXIT_CHECK_FAILED)
