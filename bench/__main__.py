"""``python -m bench --section all|<name>[,<name>...]`` (``make bench BENCH=<name>``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

import bench.sections  # noqa: F401  (importing registers the sections)
from bench.errors import BenchError
from bench.harness import run_bench
from bench.registry import ALL, section_names
from devstack import DevstackError

PIPED_WIDTH_COLUMNS = 120


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--section",
        default=ALL,
        help=f"{ALL} (default), or one or more of: {', '.join(section_names())} (comma-separated)",
    )
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    arguments = parser.parse_args(argv)
    if arguments.list:
        for name in section_names():
            print(name)
        return 0
    try:
        # Piped (CI logs, `| tee`), rich would assume 80 columns and cut the targets; a log has room.
        console = Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH_COLUMNS)
        return run_bench(arguments.section, repo_dir=Path.cwd(), environ=os.environ, console=console)
    except (BenchError, DevstackError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
