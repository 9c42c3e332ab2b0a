"""Proto ⇄ domain conversions for maker-checker (and nothing else)."""

from __future__ import annotations

from services.ledger.domain_approvals import ApprovalPolicy, ApprovalRuleInput
from services.ledger.service_approvals import Decided
from services.ledger.wire import money_in, money_out, timestamp_out, transfer_out
from wallet.ledger.v1 import ledger_approvals_pb2 as pb
from wallet.ledger.v1 import ledger_transfers_pb2


def rules_in(policy: pb.ApprovalPolicy) -> list[ApprovalRuleInput]:
    return [
        ApprovalRuleInput(rule.account_kind, rule.currency, money_in(rule.threshold, rule.HasField("threshold")))
        for rule in policy.rules
    ]


def policy_out(policy: ApprovalPolicy) -> pb.ApprovalPolicy:
    return pb.ApprovalPolicy(
        rules=[
            pb.ApprovalRule(
                account_kind=int(rule.account_kind),  # type: ignore[arg-type]
                currency=rule.currency,
                threshold=money_out(rule.currency, rule.threshold_minor),
            )
            for rule in policy.rules
        ],
        updated_at=timestamp_out(policy.updated_at),
        updated_by_principal_id=policy.updated_by_principal_id,
    )


def decided_out(decided: Decided) -> ledger_transfers_pb2.Transfer:
    message = transfer_out(decided.transfer)
    message.approved_by_principal_id = decided.approval.decided_by_principal_id
    return message
