"""walletctl's ledger commands against a real ledger that trusts a real auth: verify-chain, invariants, inclusion
proofs (fetched, saved, verified offline, tampered), and the one-line errors when the ledger is down or walletctl
has no credentials."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import grpc
import pytest

from tests.integration.auth.conftest import Tenant, bearer
from tests.integration.cli.conftest import DOWN_ADDRESS, Suite, walletctl_run
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_transfers_pb2

pytestmark = pytest.mark.integration


async def tenant_with_transfers(suite: Suite, count: int) -> tuple[Tenant, list[str]]:
    """A new tenant whose owner moved ``count`` payments between two of its accounts; returns the transfer ids."""
    tenant = await suite.tenant()
    metadata = bearer(tenant.access_token)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.ledger.port}") as channel:
        stub = suite.ledger_stub(channel)
        accounts = []
        for kind in (ledger_accounts_pb2.ACCOUNT_KIND_SUSPENSE, ledger_accounts_pb2.ACCOUNT_KIND_OPERATING):
            account_id = str(uuid.uuid4())
            await stub.OpenAccount(
                ledger_accounts_pb2.OpenAccountRequest(account_id=account_id, kind=kind, currency="EUR"),
                metadata=metadata,
            )
            accounts.append(account_id)
        transfer_ids = []
        for index in range(count):
            transfer_id = str(uuid.uuid4())
            await stub.CreateTransfer(
                ledger_transfers_pb2.CreateTransferRequest(
                    transfer_id=transfer_id,
                    debit_account_id=accounts[0],
                    credit_account_id=accounts[1],
                    amount=money_pb2.Money(currency="EUR", amount_minor=100 + index),
                ),
                metadata=metadata,
            )
            transfer_ids.append(transfer_id)
    return tenant, transfer_ids


def assert_one_line_error(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("walletctl: ")
    for needle in needles:
        assert needle in lines[0]


async def test_verify_chain_and_invariants_of_a_tenant(suite: Suite) -> None:
    tenant, _ = await tenant_with_transfers(suite, 3)
    environ = suite.environ(WALLETCTL_ORGANIZATION_ID=tenant.organization_id)

    chain = await walletctl_run(["ledger", "verify-chain", "--json"], environ)
    assert chain.exit_code == 0, chain.stderr
    report = json.loads(chain.stdout)
    assert report["intact"] is True
    assert int(report["entries_checked"]) == 3

    human = await walletctl_run(["ledger", "verify-chain"], environ)
    assert human.exit_code == 0
    assert "chain intact" in human.stdout

    invariants = await walletctl_run(["invariants", "--json", "--org", tenant.organization_id], suite.environ())
    assert invariants.exit_code == 0, invariants.stderr
    checked = json.loads(invariants.stdout)
    assert checked["intact"] is True
    eur = [row for row in checked["totals"] if row["currency"] == "EUR"]
    assert eur
    assert eur[0]["posted_debits_minor"] == eur[0]["posted_credits_minor"] == str(100 + 101 + 102)


async def test_inclusion_proof_is_verified_offline_and_a_tampered_one_fails(suite: Suite, tmp_path: Path) -> None:
    tenant, transfer_ids = await tenant_with_transfers(suite, 5)
    await suite.ledger_app.integrity.seal_pending()
    environ = suite.environ(WALLETCTL_ORGANIZATION_ID=tenant.organization_id)

    fetched = await walletctl_run(["ledger", "proof", "get", transfer_ids[2]], environ)
    assert fetched.exit_code == 0, fetched.stderr
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(fetched.stdout)

    offline = await walletctl_run(["ledger", "proof", "verify", "--file", str(proof_file), "--json"], {})
    assert offline.exit_code == 0, offline.stderr
    assert json.loads(offline.stdout)["valid"] is True

    online = await walletctl_run(["ledger", "proof", "verify", "--transfer-id", transfer_ids[4]], environ)
    assert online.exit_code == 0, online.stderr
    assert "valid" in online.stdout

    proof = json.loads(proof_file.read_text())
    canonical = bytearray(base64.b64decode(proof["canonical_entry"]))
    canonical[-1] ^= 0x01
    proof["canonical_entry"] = base64.b64encode(bytes(canonical)).decode()
    proof_file.write_text(json.dumps(proof))
    tampered = await walletctl_run(["ledger", "proof", "verify", "--file", str(proof_file)], {})
    assert tampered.exit_code == 1
    assert "INVALID" in tampered.stdout

    proof_file.write_text("{not json")
    garbage = await walletctl_run(["ledger", "proof", "verify", "--file", str(proof_file)], {})
    assert garbage.exit_code == 2
    assert_one_line_error(garbage.stderr, "not JSON")


async def test_unsealed_entry_is_a_one_line_error_with_the_reason(suite: Suite) -> None:
    tenant, transfer_ids = await tenant_with_transfers(suite, 1)
    environ = suite.environ(WALLETCTL_ORGANIZATION_ID=tenant.organization_id)
    result = await walletctl_run(["ledger", "proof", "get", transfer_ids[0]], environ)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "FAILED_PRECONDITION", "ENTRY_NOT_SEALED")


async def test_ledger_down_is_one_clear_line(suite: Suite) -> None:
    for args in (["ledger", "verify-chain"], ["invariants"], ["ledger", "proof", "get", str(uuid.uuid4())]):
        result = await walletctl_run(args, suite.environ(LEDGER_ADDR=DOWN_ADDRESS))
        assert result.exit_code == 2, args
        assert_one_line_error(result.stderr, "ledger", DOWN_ADDRESS, "not reachable")


async def test_auth_down_or_no_credentials_is_one_clear_line(suite: Suite) -> None:
    auth_down = await walletctl_run(["invariants"], suite.environ(AUTH_ADDR=DOWN_ADDRESS))
    assert auth_down.exit_code == 2
    assert_one_line_error(auth_down.stderr, "auth", "not reachable")

    anonymous = await walletctl_run(["invariants"], suite.environ(WALLETCTL_CLIENT_ID="", WALLETCTL_CLIENT_SECRET=""))
    assert anonymous.exit_code == 2
    assert_one_line_error(anonymous.stderr, "WALLETCTL_TOKEN")

    wrong_secret = await walletctl_run(["invariants"], suite.environ(WALLETCTL_CLIENT_SECRET="not-the-secret"))
    assert wrong_secret.exit_code == 2
    assert_one_line_error(wrong_secret.stderr, "auth answered UNAUTHENTICATED")


async def test_a_token_from_the_environment_is_used_as_is(suite: Suite) -> None:
    tenant, _ = await tenant_with_transfers(suite, 1)
    # The owner's own token (a human with the owner role) instead of client credentials.
    environ = suite.environ(WALLETCTL_TOKEN=tenant.access_token, WALLETCTL_CLIENT_ID="", WALLETCTL_CLIENT_SECRET="")
    result = await walletctl_run(["ledger", "verify-chain", "--json"], environ)
    assert result.exit_code == 0, result.stderr
    assert int(json.loads(result.stdout)["entries_checked"]) == 1
