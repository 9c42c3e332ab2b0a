"""Rule sets (publish, validation, versions, rollback, hot reload on another replica, backtest, the anomaly flag)
and block/allow lists, against a real server with Postgres and Redis."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import grpc
import pytest

from services.kit.status import ErrorDetails
from wallet.common.v1 import money_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_lists_pb2, risk_rules_pb2

pytestmark = pytest.mark.integration

JSON = risk_rules_pb2.RULE_FORMAT_JSON
ALLOW = risk_assessments_pb2.DECISION_ALLOW
CHALLENGE = risk_assessments_pb2.DECISION_CHALLENGE
DENY = risk_assessments_pb2.DECISION_DENY
BLOCK = risk_lists_pb2.LIST_KIND_BLOCK

STRICT_RULES = {
    "thresholds": {"challenge": 10, "review": 50, "deny": 95},
    "rules": [
        {
            "id": "any_amount_over_100",
            "reason": "AMOUNT_OVER_100",
            "weight": 20,
            "when": {"feature": "payment.amount_minor", "op": ">", "value": 10_000},
        }
    ],
}


def _id() -> str:
    return str(uuid.uuid4())


def _context(amount_minor: int, **fields: Any) -> risk_assessments_pb2.AssessmentContext:
    values: dict[str, Any] = {"debit_account_id": _id(), "credit_account_id": _id(), **fields}
    return risk_assessments_pb2.AssessmentContext(
        amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor), **values
    )


async def _assess(stack: Any, org: str, ctx: risk_assessments_pb2.AssessmentContext, stub: Any = None) -> Any:
    response = await (stub or stack.stub).Assess(
        risk_assessments_pb2.AssessRequest(assessment_id=_id(), context=ctx),
        metadata=stack.auth(stack.tokens.service(org)),
    )
    return response.assessment


async def _publish(stack: Any, org: str, document: Any, expected: int, request_id: str = "") -> Any:
    text = document if isinstance(document, str) else json.dumps(document)
    return await stack.stub.PublishRules(
        risk_rules_pb2.PublishRulesRequest(
            document=text, format=JSON, expected_active_version=expected, request_id=request_id or _id()
        ),
        metadata=stack.auth(stack.tokens.member(org, "risk_analyst")),
    )


async def test_invalid_rule_sets_name_every_problem_and_leave_the_active_version(risk_stack: Any) -> None:
    org = _id()
    document = {
        "thresholds": {"challenge": 50, "review": 40, "deny": 90},
        "colour": "red",
        "rules": [
            {
                "id": "ok",
                "reason": "OK",
                "weight": 5,
                "when": {"feature": "payment.amount_minor", "op": ">", "value": 1},
            },
            {
                "id": "bad",
                "reason": "BAD",
                "weight": 5,
                "when": {"feature": "account.shoe_size", "op": ">", "value": 1},
            },
            {"id": "typo", "reason": "TYPO", "wieght": 5, "when": {"feature": "auth.mfa", "op": ">", "value": True}},
        ],
    }
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _publish(risk_stack, org, document, 0)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = ErrorDetails.from_rpc_error(raised.value)
    assert details.reason == "RULES_INVALID"
    fields = {v.field for v in details.field_violations}
    assert fields == {
        "document.thresholds",
        "document.colour",
        "document.rules[1].when.feature",
        "document.rules[2].wieght",
        "document.rules[2].when.value",
    }
    with pytest.raises(grpc.aio.AioRpcError) as not_json:
        await _publish(risk_stack, org, "{not json", 0)
    assert ErrorDetails.from_rpc_error(not_json.value).reason == "RULES_INVALID"
    current = await risk_stack.stub.GetRules(
        risk_rules_pb2.GetRulesRequest(), metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst"))
    )
    assert current.rule_set.version == 0
    assert current.rule_set.active is True
    assert "velocity_1h" in current.rule_set.document


async def test_publish_takes_effect_on_every_replica_and_rollback_restores(risk_stack: Any, replica: Any) -> None:
    org = _id()
    before = await _assess(risk_stack, org, _context(20_000), stub=replica)
    assert before.decision == ALLOW
    request_id = _id()
    published = await _publish(risk_stack, org, STRICT_RULES, 0, request_id)
    assert published.rule_set.version == 1
    assert published.rule_set.active is True
    replayed = await _publish(risk_stack, org, STRICT_RULES, 0, request_id)
    assert replayed.rule_set.version == 1
    after = await _assess(risk_stack, org, _context(20_000), stub=replica)
    assert after.rules_version == 1
    assert list(after.reason_codes) == ["AMOUNT_OVER_100"]
    assert after.decision == CHALLENGE
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await _publish(risk_stack, org, STRICT_RULES, 0)
    assert ErrorDetails.from_rpc_error(conflict.value).reason == "RULES_VERSION_CONFLICT"
    analyst = risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst"))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await risk_stack.stub.RollbackRules(
            risk_rules_pb2.RollbackRulesRequest(target_version=7, expected_active_version=1, request_id=_id()),
            metadata=analyst,
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    await _publish(risk_stack, org, {**STRICT_RULES, "rules": []}, 1)
    rolled = await risk_stack.stub.RollbackRules(
        risk_rules_pb2.RollbackRulesRequest(target_version=1, expected_active_version=2, request_id=_id()),
        metadata=analyst,
    )
    assert rolled.rule_set.version == 3
    assert rolled.rule_set.copied_from_version == 1
    again = await _assess(risk_stack, org, _context(20_000), stub=replica)
    assert again.rules_version == 3
    assert again.decision == CHALLENGE
    versions = await risk_stack.stub.ListRuleVersions(
        risk_rules_pb2.ListRuleVersionsRequest(page_size=2), metadata=analyst
    )
    assert [v.version for v in versions.rule_sets] == [3, 2]
    assert versions.rule_sets[0].active is True
    assert versions.rule_sets[0].document == ""
    rest = await risk_stack.stub.ListRuleVersions(
        risk_rules_pb2.ListRuleVersionsRequest(page_size=2, page_token=versions.next_page_token), metadata=analyst
    )
    assert [v.version for v in rest.rule_sets] == [1]
    assert rest.next_page_token == ""


async def test_dry_run_reports_how_decisions_would_change(risk_stack: Any) -> None:
    org = _id()
    start = time.time() - 1
    for amount in (500, 20_000, 30_000):
        await _assess(risk_stack, org, _context(amount))
    await risk_stack.app.recorder.flushed()
    request = risk_rules_pb2.DryRunRequest(document=json.dumps(STRICT_RULES), format=JSON)
    request.start_time.FromSeconds(int(start))
    request.end_time.FromSeconds(int(time.time()) + 5)
    report = await risk_stack.stub.DryRun(
        request, metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst"))
    )
    assert report.assessments_replayed == 3
    assert {c.decision: c.count for c in report.recorded_counts} == {ALLOW: 3}
    assert {c.decision: c.count for c in report.draft_counts} == {ALLOW: 1, CHALLENGE: 2}
    assert report.flipped_total == 2
    assert [(c.recorded_decision, c.draft_decision, c.count) for c in report.changes] == [(ALLOW, CHALLENGE, 2)]
    assert {f.draft_decision for f in report.flipped} == {CHALLENGE}
    assert all(list(f.draft_reason_codes) == ["AMOUNT_OVER_100"] for f in report.flipped)
    active = await risk_stack.stub.GetRules(
        risk_rules_pb2.GetRulesRequest(), metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst"))
    )
    assert active.rule_set.version == 0  # a dry run publishes nothing


async def test_the_anomaly_score_counts_only_when_the_rules_turn_it_on(risk_stack: Any) -> None:
    org = _id()
    shadow = await _assess(risk_stack, org, _context(1_000))
    assert shadow.anomaly_shadow is True
    await _publish(risk_stack, org, {**STRICT_RULES, "anomaly_model": "active"}, 0)
    active = await _assess(risk_stack, org, _context(1_000))
    assert active.anomaly_shadow is False
    assert 0 <= active.anomaly_score <= 100


async def test_block_and_allow_lists_decide_before_the_rules(risk_stack: Any) -> None:
    org = _id()
    analyst = risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst"))
    device = f"device-{_id()}"
    entry_id = _id()
    add = risk_lists_pb2.AddListEntryRequest(
        list_entry_id=entry_id,
        list_kind=BLOCK,
        entry_type=risk_lists_pb2.LIST_ENTRY_TYPE_DEVICE,
        value=device,
        reason="stolen phone",
    )
    added = await risk_stack.stub.AddListEntry(add, metadata=analyst)
    assert added.list_entry.created_by_principal_id
    assert (await risk_stack.stub.AddListEntry(add, metadata=analyst)).list_entry.list_entry_id == entry_id
    changed = risk_lists_pb2.AddListEntryRequest()
    changed.CopyFrom(add)
    changed.value = "another-device"
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await risk_stack.stub.AddListEntry(changed, metadata=analyst)
    assert ErrorDetails.from_rpc_error(reused.value).reason == "IDEMPOTENCY_KEY_REUSED"
    blocked = await _assess(risk_stack, org, _context(100, device_id=device))
    assert blocked.decision == DENY
    assert list(blocked.reason_codes) == ["BLOCKLIST_DEVICE"]
    await risk_stack.stub.AddListEntry(
        risk_lists_pb2.AddListEntryRequest(
            list_entry_id=_id(),
            list_kind=BLOCK,
            entry_type=risk_lists_pb2.LIST_ENTRY_TYPE_IP_ADDRESS,
            value="203.0.113.0/24",
            reason="botnet range",
        ),
        metadata=analyst,
    )
    by_network = await _assess(risk_stack, org, _context(100, ip_address="203.0.113.77"))
    assert list(by_network.reason_codes) == ["BLOCKLIST_IP"]
    trusted = _id()
    await risk_stack.stub.AddListEntry(
        risk_lists_pb2.AddListEntryRequest(
            list_entry_id=_id(),
            list_kind=risk_lists_pb2.LIST_KIND_ALLOW,
            entry_type=risk_lists_pb2.LIST_ENTRY_TYPE_ACCOUNT,
            value=trusted,
            reason="payroll account",
        ),
        metadata=analyst,
    )
    allowed = await _assess(risk_stack, org, _context(5_000_000, debit_account_id=trusted, credit_account_id=_id()))
    assert allowed.decision == ALLOW
    assert list(allowed.reason_codes) == ["ALLOWLIST_ACCOUNT"]
    await risk_stack.stub.RemoveListEntry(
        risk_lists_pb2.RemoveListEntryRequest(list_entry_id=entry_id, request_id=_id()), metadata=analyst
    )
    unblocked = await _assess(risk_stack, org, _context(100, device_id=device))
    assert unblocked.decision == ALLOW
    active = await risk_stack.stub.ListListEntries(risk_lists_pb2.ListListEntriesRequest(), metadata=analyst)
    assert len(active.list_entries) == 2
    everything = await risk_stack.stub.ListListEntries(
        risk_lists_pb2.ListListEntriesRequest(include_inactive=True, list_kind=BLOCK), metadata=analyst
    )
    assert len(everything.list_entries) == 2
    assert any(e.HasField("removed_at") for e in everything.list_entries)
    other_tenant = risk_stack.auth(risk_stack.tokens.member(_id(), "risk_analyst"))
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await risk_stack.stub.RemoveListEntry(
            risk_lists_pb2.RemoveListEntryRequest(list_entry_id=entry_id, request_id=_id()), metadata=other_tenant
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_list_entries_name_each_field(risk_stack: Any) -> None:
    org = _id()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stack.stub.AddListEntry(
            risk_lists_pb2.AddListEntryRequest(
                list_entry_id="nope", entry_type=risk_lists_pb2.LIST_ENTRY_TYPE_IP_ADDRESS, value="999.1.1.1"
            ),
            metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst")),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in ErrorDetails.from_rpc_error(raised.value).field_violations}
    assert fields == {"list_entry_id", "list_kind", "value", "reason"}


async def test_the_anomaly_model_learns_from_the_event_stream(risk_stack: Any) -> None:
    org = _id()
    accounts = [_id() for _ in range(20)]
    for index in range(240):
        debit = accounts[index % 20]
        credit = accounts[(index + 1) % 20]
        await risk_stack.publish_posted(org, debit=debit, credit=credit, amount_minor=1_000 + (index * 37) % 2_000)
    await risk_stack.consume_all()
    assert risk_stack.app.models.samples(org) == 240
    ordinary = await _assess(
        risk_stack, org, _context(1_500, debit_account_id=accounts[3], credit_account_id=accounts[4])
    )
    unusual = await _assess(risk_stack, org, _context(900_000_000, debit_account_id=accounts[3]))
    assert unusual.anomaly_score > ordinary.anomaly_score
    assert unusual.anomaly_shadow is True
    assert "ANOMALOUS_PAYMENT" not in unusual.reason_codes  # shadow mode: recorded, not counted
