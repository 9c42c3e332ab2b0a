"""``python -m demo`` (``make demo``): runs the walk-through against the suite ``make run`` started, or starts one
for the duration of the demo when none is running."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from rich.console import Console

from demo.api import DemoError, Gateway, Services
from demo.suite import SuiteAddresses, SuiteUnavailable, read_running, started_suite
from demo.walkthrough import Narrator, Walkthrough

RUN_DIR_DEFAULT = ".run"
FINISHED_LINE = "demo finished"
EXIT_FAILED = 1
WIDTH_WHEN_PIPED = 140


async def _walk(suite: SuiteAddresses, console: Console) -> None:
    gateway = Gateway(suite.gateway_http)
    services = Services(dict(suite.grpc))
    try:
        await Walkthrough(gateway, services, Narrator(console, Walkthrough.STEPS), suite.run_dir).run()
    finally:
        await gateway.close()
        await services.close()


def _run(suite: SuiteAddresses, console: Console) -> None:
    console.print(f"[bold]wallet demo[/bold] against the suite at {suite.gateway_http} (run dir {suite.run_dir})")
    asyncio.run(_walk(suite, console))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(os.environ.get("WALLET_RUN_DIR", RUN_DIR_DEFAULT)),
        help="the suite's run dir (default: WALLET_RUN_DIR or .run)",
    )
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    console = Console()
    if not console.is_terminal:
        console = Console(width=WIDTH_WHEN_PIPED)  # the trace tree and tables stay readable in a log or a test
    started = time.monotonic()
    try:
        running = read_running(run_dir)
        if running is not None:
            _run(running, console)
        else:
            console.print(f"no suite running in {run_dir}: starting one for the demo (stopped when it ends)")
            with started_suite(run_dir, run_dir / "demo-devstack.out") as suite:
                _run(suite, console)
    except (DemoError, SuiteUnavailable) as err:
        console.print(f"[red]✘ demo failed:[/red] {err}", highlight=False)
        return EXIT_FAILED
    console.print()
    console.print(f"[bold green]{FINISHED_LINE}[/bold green] in {time.monotonic() - started:.1f} s", highlight=False)
    return 0
