"""Assess end to end against a real server, Postgres and Redis, with feature windows fed by real ledger event
envelopes: each synthetic scenario produces the expected decision and reason; normal traffic is mostly ALLOW."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import grpc
import pytest

from services.kit.status import ErrorDetails
from wallet.common.v1 import money_pb2
from wallet.risk.v1 import risk_assessments_pb2

pytestmark = pytest.mark.integration

ALLOW = risk_assessments_pb2.DECISION_ALLOW
CHALLENGE = risk_assessments_pb2.DECISION_CHALLENGE
REVIEW = risk_assessments_pb2.DECISION_REVIEW
DENY = risk_assessments_pb2.DECISION_DENY


def _id() -> str:
    return str(uuid.uuid4())


def context(
    debit: str, credit: str, amount_minor: int, *, device_id: str = "", ip: str = "", **extra: Any
) -> risk_assessments_pb2.AssessmentContext:
    return risk_assessments_pb2.AssessmentContext(
        transfer_id=_id(),
        debit_account_id=debit,
        credit_account_id=credit,
        amount=money_pb2.Money(currency="EUR", amount_minor=amount_minor),
        device_id=device_id,
        ip_address=ip,
        channel=risk_assessments_pb2.CHANNEL_MOBILE_APP,
        **extra,
    )


async def assess(stack: Any, org: str, ctx: risk_assessments_pb2.AssessmentContext, assessment_id: str = "") -> Any:
    request = risk_assessments_pb2.AssessRequest(assessment_id=assessment_id or _id(), context=ctx)
    response = await stack.stub.Assess(request, metadata=stack.auth(stack.tokens.service(org)))
    return response.assessment


async def test_a_first_small_payment_is_allowed_and_recorded(risk_stack: Any) -> None:
    org = _id()
    assessment = await assess(risk_stack, org, context(_id(), _id(), 2_500))
    assert assessment.decision == ALLOW
    assert assessment.rules_version == 0  # the built-in default rule set
    assert assessment.anomaly_shadow is True
    assert 0 <= assessment.score <= 100
    assert assessment.evaluation_duration.ToMicroseconds() > 0
    await risk_stack.app.recorder.flushed()
    listed = await risk_stack.stub.ListAssessments(
        risk_assessments_pb2.ListAssessmentsRequest(),
        metadata=risk_stack.auth(risk_stack.tokens.member(org, "auditor")),
    )
    assert [a.assessment_id for a in listed.assessments] == [assessment.assessment_id]
    assert listed.assessments[0].context.amount.amount_minor == 2_500


async def test_velocity_burst_is_challenged(risk_stack: Any) -> None:
    org, account, payee = _id(), _id(), _id()
    for _ in range(6):
        await risk_stack.publish_posted(org, debit=account, credit=payee, amount_minor=1_000)
    assert await risk_stack.consume_all() == 6
    assessment = await assess(risk_stack, org, context(account, payee, 1_000))
    assert "VELOCITY_1M" in assessment.reason_codes
    assert assessment.decision == CHALLENGE


async def test_new_payee_with_a_high_amount_is_challenged(risk_stack: Any) -> None:
    org, account = _id(), _id()
    known_payee = _id()
    await risk_stack.publish_posted(org, debit=account, credit=known_payee, amount_minor=5_000)
    await risk_stack.consume_all()
    to_new = await assess(risk_stack, org, context(account, _id(), 150_000))
    assert list(to_new.reason_codes) == ["NEW_PAYEE_HIGH_AMOUNT"]
    assert to_new.decision == CHALLENGE
    to_known = await assess(risk_stack, org, context(account, known_payee, 150_000))
    assert "NEW_PAYEE_HIGH_AMOUNT" not in to_known.reason_codes


async def test_structuring_below_the_threshold_goes_to_review_with_a_case(risk_stack: Any) -> None:
    org, account, payee = _id(), _id(), _id()
    for amount in (950_000, 930_000):
        await risk_stack.publish_posted(org, debit=account, credit=payee, amount_minor=amount)
    await risk_stack.consume_all()
    assessment = await assess(risk_stack, org, context(account, payee, 960_000))
    assert "STRUCTURING_SUSPECTED" in assessment.reason_codes
    assert assessment.decision == REVIEW
    assert assessment.case_id


async def test_mule_fan_in_then_fan_out_goes_to_review(risk_stack: Any) -> None:
    org, mule = _id(), _id()
    for _ in range(5):
        await risk_stack.publish_posted(org, debit=_id(), credit=mule, amount_minor=100_000)
    await risk_stack.consume_all()
    assessment = await assess(risk_stack, org, context(mule, _id(), 450_000))
    assert "MULE_PATTERN" in assessment.reason_codes
    assert assessment.decision == REVIEW


async def test_a_dormant_account_waking_up_is_challenged(risk_stack: Any) -> None:
    org, account, payee = _id(), _id(), _id()
    await risk_stack.publish_posted(
        org, debit=account, credit=payee, amount_minor=3_000, posted_at_s=time.time() - 100 * 86_400
    )
    await risk_stack.consume_all()
    assessment = await assess(risk_stack, org, context(account, payee, 3_000))
    assert list(assessment.reason_codes) == ["DORMANT_ACCOUNT_ACTIVE"]
    assert assessment.decision == CHALLENGE


async def test_an_amount_far_above_the_accounts_history_is_flagged(risk_stack: Any) -> None:
    org, account, payee = _id(), _id(), _id()
    for amount in (1_000, 1_200, 900, 1_100, 1_050, 950):
        await risk_stack.publish_posted(org, debit=account, credit=payee, amount_minor=amount)
    await risk_stack.consume_all()
    assessment = await assess(risk_stack, org, context(account, payee, 90_000))
    assert "UNUSUAL_AMOUNT" in assessment.reason_codes


async def test_normal_traffic_is_mostly_allowed(risk_stack: Any) -> None:
    org = _id()
    rng = random.Random(7)
    accounts = [_id() for _ in range(10)]
    decisions = []
    for _ in range(60):
        debit, credit = rng.sample(accounts, 2)
        amount = rng.randint(100, 50_000)
        await risk_stack.publish_posted(org, debit=debit, credit=credit, amount_minor=amount)
        decisions.append((await assess(risk_stack, org, context(debit, credit, amount))).decision)
    await risk_stack.consume_all()
    assert decisions.count(ALLOW) >= 54


async def test_a_replayed_assessment_id_returns_the_first_decision(risk_stack: Any) -> None:
    org = _id()
    ctx = context(_id(), _id(), 150_000)
    assessment_id = _id()
    first = await assess(risk_stack, org, ctx, assessment_id)
    again = await assess(risk_stack, org, ctx, assessment_id)
    assert again.decision == first.decision
    assert again.assessed_at == first.assessed_at
    changed = risk_assessments_pb2.AssessmentContext()
    changed.CopyFrom(ctx)
    changed.amount.amount_minor = 1
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await assess(risk_stack, org, changed, assessment_id)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert ErrorDetails.from_rpc_error(raised.value).reason == "IDEMPOTENCY_KEY_REUSED"


async def test_bad_input_names_every_bad_field_and_records_nothing(risk_stack: Any) -> None:
    org = _id()
    ctx = context("not-a-uuid", _id(), 0, ip="300.1.1.1")
    ctx.amount.currency = "eur"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await assess(risk_stack, org, ctx, "also-bad")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in ErrorDetails.from_rpc_error(raised.value).field_violations}
    assert fields == {
        "assessment_id",
        "context.debit_account_id",
        "context.amount.amount_minor",
        "context.amount.currency",
        "context.ip_address",
    }
    await risk_stack.app.recorder.flushed()
    listed = await risk_stack.stub.ListAssessments(
        risk_assessments_pb2.ListAssessmentsRequest(),
        metadata=risk_stack.auth(risk_stack.tokens.member(org, "auditor")),
    )
    assert list(listed.assessments) == []


async def test_assess_is_platform_only(risk_stack: Any) -> None:
    org = _id()
    request = risk_assessments_pb2.AssessRequest(assessment_id=_id(), context=context(_id(), _id(), 100))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stack.stub.Assess(request, metadata=risk_stack.auth(risk_stack.tokens.member(org, "owner")))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_consumer_counts_a_redelivered_event_once(risk_stack: Any) -> None:
    org, account, payee, device = _id(), _id(), _id(), _id()
    event_id = uuid.uuid4()
    for _ in range(3):
        await risk_stack.publish_posted(
            org, debit=account, credit=payee, amount_minor=700, device_id=device, event_id=event_id
        )
    assert await risk_stack.consume_all() == 3
    response = await risk_stack.stub.GetFeatures(
        risk_assessments_pb2.GetFeaturesRequest(account_id=account, device_id=device, counterparty_id=payee),
        metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst")),
    )
    features = {f.name: f for f in response.features}
    assert features["account.outflow_count.1h"].integer_value == 1
    assert features["account.outflow_sum.24h"].integer_value == 700
    assert features["device.count.1m"].integer_value == 1
    assert features["payee.first_payment"].boolean_value is False
    assert features["account.history_count"].integer_value == 1


async def test_list_assessments_pages_and_filters(risk_stack: Any) -> None:
    org, account = _id(), _id()
    ids = [(await assess(risk_stack, org, context(account, _id(), 1_000 + i))).assessment_id for i in range(5)]
    await assess(risk_stack, org, context(_id(), _id(), 10))
    await risk_stack.app.recorder.flushed()
    seen: list[str] = []
    token = ""
    auditor = risk_stack.auth(risk_stack.tokens.member(org, "auditor"))
    while True:
        page = await risk_stack.stub.ListAssessments(
            risk_assessments_pb2.ListAssessmentsRequest(page_size=2, page_token=token, account_id=account),
            metadata=auditor,
        )
        seen += [a.assessment_id for a in page.assessments]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)


async def test_an_event_that_always_fails_is_dead_lettered_not_retried_forever(risk_stack: Any) -> None:
    from services.kit.outbox import STREAM_ENTRY_FIELD
    from services.risk.consumer import DEAD_LETTER_STREAM

    junk = f"not an envelope {uuid.uuid4()}".encode()
    entry_id = await risk_stack.redis.xadd(risk_stack.config.ledger_events_stream, {STREAM_ENTRY_FIELD: junk})
    assert await risk_stack.consume_all() == 0
    reclaiming = risk_stack.app.consumer(claim_idle_ms=0)
    for _ in range(8):
        await reclaiming.consume_once(block_ms=None)
    pending = await risk_stack.redis.xpending_range(
        risk_stack.config.ledger_events_stream, risk_stack.config.consumer_group, min=entry_id, max=entry_id, count=1
    )
    assert pending == []
    dead = await risk_stack.redis.xrange(DEAD_LETTER_STREAM)
    assert any(fields[STREAM_ENTRY_FIELD.encode()] == junk for _, fields in dead)
    assert await risk_stack.redis.ttl(DEAD_LETTER_STREAM) > 0


async def test_list_assessments_filters_by_decision_and_features_need_an_account(risk_stack: Any) -> None:
    org, account = _id(), _id()
    allowed = await assess(risk_stack, org, context(account, _id(), 500))
    challenged = await assess(risk_stack, org, context(account, _id(), 150_000))
    assert challenged.decision == CHALLENGE
    await risk_stack.app.recorder.flushed()
    auditor = risk_stack.auth(risk_stack.tokens.member(org, "auditor"))
    only_allowed = await risk_stack.stub.ListAssessments(
        risk_assessments_pb2.ListAssessmentsRequest(decision=ALLOW), metadata=auditor
    )
    assert [a.assessment_id for a in only_allowed.assessments] == [allowed.assessment_id]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await risk_stack.stub.GetFeatures(
            risk_assessments_pb2.GetFeaturesRequest(account_id="nope"),
            metadata=risk_stack.auth(risk_stack.tokens.member(org, "risk_analyst")),
        )
    assert {v.field for v in ErrorDetails.from_rpc_error(raised.value).field_violations} == {"account_id"}
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await risk_stack.stub.ListAssessments(
            risk_assessments_pb2.ListAssessmentsRequest(page_size=-1), metadata=auditor
        )
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
