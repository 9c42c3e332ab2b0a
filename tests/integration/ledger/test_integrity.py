"""Tamper evidence and invariants: sealed blocks, inclusion proofs verified offline, VerifyChain naming the first
entry edited behind the service's back, CheckInvariants finding a balance edited in SQL."""

from __future__ import annotations

import uuid

import grpc
import pytest

from services.kit.status import ErrorDetails
from services.ledger.proof import verify_proof
from tests.integration.ledger.conftest import LedgerHarness
from wallet.ledger.v1 import ledger_integrity_pb2 as pb

pytestmark = pytest.mark.integration


async def test_sealed_transfer_has_a_proof_that_verifies_offline(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    account, other = await ledger.open(org=org), await ledger.open(org=org)
    await ledger.fund(account, 500, org=org)
    transfers = [await ledger.transfer(account, other, n, org=org) for n in (1, 2, 3, 4, 5)]
    unsealed = await _error(
        ledger.stub.GetInclusionProof(
            pb.GetInclusionProofRequest(transfer_id=transfers[2].transfer_id), metadata=ledger.auth(org=org)
        )
    )
    assert unsealed.reason == "ENTRY_NOT_SEALED"
    assert await ledger.app.integrity.seal_pending() >= 1
    for transfer in transfers:
        response = await ledger.stub.GetInclusionProof(
            pb.GetInclusionProofRequest(transfer_id=transfer.transfer_id), metadata=ledger.auth(org=org)
        )
        proof = response.proof
        assert proof.sequence == transfer.sequence
        assert verify_proof(
            proof.canonical_entry,
            proof.previous_hash,
            proof.entry_hash,
            proof.leaf_index,
            proof.leaf_count,
            list(proof.audit_path),
            proof.merkle_root,
        )
        assert not verify_proof(
            proof.canonical_entry.replace(b'"amount_minor":', b'"amount_minor":9'),
            proof.previous_hash,
            proof.entry_hash,
            proof.leaf_index,
            proof.leaf_count,
            list(proof.audit_path),
            proof.merkle_root,
        )
    verdict = await ledger.stub.VerifyChain(pb.VerifyChainRequest(), metadata=ledger.auth(org=org))
    assert verdict.intact
    assert verdict.entries_checked == transfers[-1].sequence
    assert verdict.blocks_checked == 1


async def test_verify_chain_names_the_first_entry_edited_in_sql(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    account, other = await ledger.open(org=org), await ledger.open(org=org)
    await ledger.fund(account, 500, org=org)
    transfers = [await ledger.transfer(account, other, n, org=org) for n in (10, 20, 30)]
    await ledger.app.integrity.seal_pending()
    target = transfers[1]
    async with ledger.app.runtime.pool.acquire() as connection:
        await connection.execute(
            "UPDATE chain_entries SET amount_minor = 2000 WHERE organization_id = $1 AND sequence = $2",
            uuid.UUID(org),
            target.sequence,
        )
    verdict = await ledger.stub.VerifyChain(pb.VerifyChainRequest(), metadata=ledger.auth(org=org))
    assert not verdict.intact
    assert verdict.first_broken_sequence == target.sequence


async def test_check_invariants_finds_a_balance_edited_in_sql(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    account, other = await ledger.open(org=org), await ledger.open(org=org)
    await ledger.fund(account, 500, org=org)
    await ledger.transfer(account, other, 125, org=org)
    clean = await ledger.stub.CheckInvariants(pb.CheckInvariantsRequest(), metadata=ledger.auth(org=org))
    assert clean.intact
    assert [(t.currency, t.posted_debits_minor, t.posted_credits_minor) for t in clean.totals] == [("EUR", 625, 625)]
    async with ledger.app.runtime.pool.acquire() as connection:
        await connection.execute(
            "UPDATE accounts SET posted_credits_minor = posted_credits_minor + 1 WHERE organization_id = $1 AND account_id = $2",
            uuid.UUID(org),
            uuid.UUID(other),
        )
    broken = await ledger.stub.CheckInvariants(pb.CheckInvariantsRequest(), metadata=ledger.auth(org=org))
    assert not broken.intact
    kinds = {v.kind for v in broken.violations}
    assert pb.INVARIANT_KIND_DEBITS_EQUAL_CREDITS in kinds
    assert pb.INVARIANT_KIND_BALANCE_EQUALS_POSTINGS in kinds
    assert other in {v.account_id for v in broken.violations}


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


async def test_periodic_invariant_job_exports_gauges(ledger: LedgerHarness) -> None:
    from prometheus_client import REGISTRY

    from services.ledger import jobs

    org = str(uuid.uuid4())
    account, other = await ledger.open(org=org), await ledger.open(org=org)
    await ledger.fund(account, 50, org=org)
    await ledger.transfer(account, other, 20, org=org)
    await jobs.check_invariants_round(ledger.app)
    # Other tests of this module break other tenants on purpose: compare against what the gauges said before.
    violations_before = REGISTRY.get_sample_value(
        "wallet_ledger_invariant_violations", {"kind": "debits_equal_credits"}
    )
    difference_before = REGISTRY.get_sample_value("wallet_ledger_debits_minus_credits_minor", {"currency": "EUR"})
    assert violations_before is not None
    assert difference_before is not None
    async with ledger.app.runtime.pool.acquire() as connection:
        await connection.execute(
            "UPDATE accounts SET posted_debits_minor = posted_debits_minor + 7 WHERE organization_id = $1 AND account_id = $2",
            uuid.UUID(org),
            uuid.UUID(account),
        )
    try:
        await jobs.check_invariants_round(ledger.app)
        violations = REGISTRY.get_sample_value("wallet_ledger_invariant_violations", {"kind": "debits_equal_credits"})
        difference = REGISTRY.get_sample_value("wallet_ledger_debits_minus_credits_minor", {"currency": "EUR"})
        assert violations == violations_before + 1
        assert difference == difference_before + 7
    finally:
        async with ledger.app.runtime.pool.acquire() as connection:
            await connection.execute(
                "UPDATE accounts SET posted_debits_minor = posted_debits_minor - 7 WHERE organization_id = $1 AND account_id = $2",
                uuid.UUID(org),
                uuid.UUID(account),
            )
