"""The platform-client step of `make run`: the command it runs and how it reads the one-time secret."""

from __future__ import annotations

import pytest

from devstack.errors import DevstackError
from devstack.platform_clients import PLATFORM_CLIENTS, bootstrap_argv, parse_bootstrap_output


def test_each_client_gets_exactly_its_scopes() -> None:
    argv = bootstrap_argv("ledger")
    assert argv[1:5] == ["-m", "services.auth", "bootstrap-platform-client", "--name"]
    assert argv[argv.index("--name") + 1] == "ledger"
    assert [argv[i + 1] for i, part in enumerate(argv) if part == "--scope"] == [
        "risk.assessments.assess",
        "contacts.directory.read",
        "contacts.card_secrets.write",
        "contacts.card_secrets.reveal",
    ]
    assert PLATFORM_CLIENTS["risk"] == (
        "ledger.reviews.approve",
        "ledger.transfers.read",
        "ledger.accounts.read",
        "ledger.reversals.write",
        "contacts.notifications.write",
    )


def test_reads_the_id_and_secret_lines() -> None:
    assert parse_bootstrap_output("client_id=abc\nclient_secret=s3cr=t\n") == ("abc", "s3cr=t")


@pytest.mark.parametrize("stdout", ["", "client_id=abc\n", "client_secret=x\n", "client_id=\nclient_secret=x\n"])
def test_missing_lines_are_a_clear_error(stdout: str) -> None:
    with pytest.raises(DevstackError):
        parse_bootstrap_output(stdout)
