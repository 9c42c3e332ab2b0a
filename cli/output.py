"""What walletctl prints: rich for people, ``--json`` for scripts, and one line on stderr for failures."""

from __future__ import annotations

import json
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console

from cli.session import CliError, run
from services.kit.config import ConfigError

T = TypeVar("T")

EXIT_CHECK_FAILED = 1  # the thing checked is unhealthy or broken (chain, invariants, status, proof)
EXIT_ERROR = 2  # walletctl could not do what was asked (service down, denied, bad input)

console = Console()
errors = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON for scripts instead of tables")]
OrganizationOption = Annotated[
    str | None, typer.Option("--org", help="tenant to act for (default: WALLETCTL_ORGANIZATION_ID)")
]


def fail(message: str) -> typer.Exit:
    errors.print(f"walletctl: {message}", markup=False, highlight=False)
    return typer.Exit(EXIT_ERROR)


@contextmanager
def reported() -> Iterator[None]:
    """Turns every expected failure inside into one line on stderr and exit code 2."""
    try:
        yield
    except CliError as err:
        raise fail(str(err)) from None
    except ConfigError as err:
        raise fail(f"configuration: {err}") from None


def execute(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a command's work; failures are ``reported()``."""
    with reported():
        return run(coroutine)


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
