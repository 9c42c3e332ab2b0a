"""``python -m devstack run``: start the whole suite as ``make run`` does (see devstack/runner.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from devstack.errors import DevstackError
from devstack.runner import run
from devstack.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run",
        help="start Postgres/Redis (embedded unless DATABASE_URL/REDIS_URL are set), migrate, start the services "
        "and the gateway, wait until they are ready; Ctrl-C stops everything",
    )
    parser.parse_args(argv)
    try:
        # The checkout is the working directory: `python -m services.<svc>` must resolve from it.
        settings = load_settings(os.environ, Path.cwd())
    except DevstackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return run(settings, Console())


if __name__ == "__main__":
    sys.exit(main())
