"""``walletctl``: the operator CLI (typer + rich). One module per command group; this one only assembles them.

Exit codes: 0 ok; 1 the thing checked is unhealthy or broken (status, chain, invariants, proof, trace not found);
2 walletctl could not do what was asked (a service down, denied, bad input), with one line on stderr.
"""

from __future__ import annotations

import typer

from cli import export, keys, ledger, risk, vault
from cli.bootstrap import bootstrap
from cli.invariants import invariants
from cli.status import status
from cli.trace import trace

app = typer.Typer(help="Operate the wallet platform.", no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """Operate the wallet platform. Addresses come from *_ADDR or the default ports (+ WALLET_PORT_OFFSET);
    credentials from WALLETCTL_TOKEN or WALLETCTL_CLIENT_ID/WALLETCTL_CLIENT_SECRET (docs/operations.md)."""


app.command()(status)
app.command()(trace)
app.command()(invariants)
app.command()(bootstrap)
app.add_typer(ledger.app, name="ledger")
app.add_typer(keys.app, name="keys")
app.add_typer(vault.app, name="vault")
app.add_typer(risk.app, name="risk")
app.add_typer(export.app, name="export")

if __name__ == "__main__":
    app()
