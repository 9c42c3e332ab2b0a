import json

import pytest

from gateway.catalog import HttpBinding, PublicMethod, public_method_index
from gateway.path_template import parse_template
from gateway.router import Router
from gateway.transcode import (
    build_request,
    idempotency_field,
    parse_json_body,
    render_response,
    set_string_path,
)
from services.kit.errors import InvalidArgument
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_transfers_pb2

LEDGER = "/wallet.ledger.v1.LedgerService/"


def _method(name: str) -> PublicMethod:
    return public_method_index()[LEDGER + name]


def _build(verb: str, path: str, *, query: list[tuple[str, str]] | None = None, body: object = None) -> object:
    found = Router(list(public_method_index().values())).match(verb, path)
    assert found is not None
    return build_request(
        found.method,
        found.binding,
        path_variables=found.path_variables,
        query=query or [],
        body=body,
        reject_unknown=True,
    )


def _violation(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    violation = error.value.field_violations[0]
    return violation.field, violation.description


def test_body_star_accepts_both_spellings() -> None:
    request = _build(
        "POST",
        "/v1/transfers",
        body={"transferId": "t-1", "debit_account_id": "a", "amount": {"currency": "EUR", "amountMinor": "1250"}},
    )
    assert isinstance(request, ledger_transfers_pb2.CreateTransferRequest)
    assert request.transfer_id == "t-1"
    assert request.debit_account_id == "a"
    assert request.amount.amount_minor == 1250


def test_path_variable_fills_the_field_and_conflicts_are_refused() -> None:
    request = _build("POST", "/v1/transfers/t-9:post", body={"requestId": "r-1"})
    assert isinstance(request, ledger_transfers_pb2.PostPendingTransferRequest)
    assert request.transfer_id == "t-9"
    assert request.request_id == "r-1"
    same = _build("POST", "/v1/transfers/t-9:post", body={"transferId": "t-9"})
    assert isinstance(same, ledger_transfers_pb2.PostPendingTransferRequest)
    with pytest.raises(InvalidArgument) as error:
        _build("POST", "/v1/transfers/t-9:post", body={"transferId": "other"})
    assert _violation(error)[0] == "transferId"


def test_query_parameters_fill_the_rest_with_enums_timestamps_and_ints() -> None:
    request = _build(
        "GET",
        "/v1/transfers",
        query=[
            ("pageSize", "20"),
            ("account_id", "acc"),
            ("status", "TRANSFER_STATUS_POSTED"),
            ("startTime", "2026-01-02T03:04:05Z"),
        ],
    )
    assert isinstance(request, ledger_transfers_pb2.ListTransfersRequest)
    assert request.page_size == 20
    assert request.account_id == "acc"
    assert request.status == ledger_transfers_pb2.TRANSFER_STATUS_POSTED
    assert request.start_time.seconds == 1767323045


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ([("nope", "1")], "nope"),
        ([("pageSize", "many")], "pageSize"),
        ([("status", "NOT_A_STATUS")], "status"),
        ([("pageSize", "1"), ("page_size", "2")], "pageSize"),
    ],
)
def test_bad_query_parameters_name_the_field(query: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        _build("GET", "/v1/transfers", query=query)
    assert _violation(error)[0] == field


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        ({"transferId": 3}, "transferId", "invalid value for this field's type"),
        ({"amount": {"amountMinor": "abc"}}, "amount.amountMinor", "invalid value for this field's type"),
        ({"amount": {"colour": "red"}}, "amount.colour", "unknown field"),
        ({"surprise": True}, "surprise", "unknown field"),
        ([1, 2], "*", "expected a JSON object"),
    ],
)
def test_wrong_types_and_unknown_fields_name_the_field(body: object, field: str, description: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        _build("POST", "/v1/transfers", body=body)
    assert _violation(error) == (field, description)


def test_body_star_refuses_query_parameters() -> None:
    with pytest.raises(InvalidArgument) as error:
        _build("POST", "/v1/transfers", query=[("transferId", "x")], body={})
    assert _violation(error)[0] == "transferId"


def test_unknown_fields_may_be_ignored_by_configuration() -> None:
    found = Router(list(public_method_index().values())).match("POST", "/v1/transfers")
    assert found is not None
    request = build_request(
        found.method, found.binding, path_variables={}, query=[("x", "1")], body={"zzz": 1}, reject_unknown=False
    )
    assert isinstance(request, ledger_transfers_pb2.CreateTransferRequest)


def test_malformed_and_too_deep_json() -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_json_body(b'{"a": ', max_depth=8)
    assert _violation(error)[0] == "*"
    assert "malformed JSON" in _violation(error)[1]
    with pytest.raises(InvalidArgument) as error:
        parse_json_body(b'{"a":' * 9 + b"1" + b"}" * 9, max_depth=8)
    assert "deeper than 8" in _violation(error)[1]
    with pytest.raises(InvalidArgument):
        parse_json_body(b"[" * 100_000 + b"]" * 100_000, max_depth=8)
    assert parse_json_body(b'{"a":{"b":[1]}}', max_depth=3) == {"a": {"b": [1]}}


def test_response_is_lower_camel_with_int64_as_string_enums_as_names_and_defaults() -> None:
    reply = ledger_transfers_pb2.CreateTransferResponse(
        transfer=ledger_transfers_pb2.Transfer(
            transfer_id="t-1",
            amount=money_pb2.Money(currency="EUR", amount_minor=9_007_199_254_740_993),
            status=ledger_transfers_pb2.TRANSFER_STATUS_POSTED,
        )
    )
    rendered = json.loads(render_response(reply, ""))
    transfer = rendered["transfer"]
    assert transfer["transferId"] == "t-1"
    assert transfer["amount"] == {"currency": "EUR", "amountMinor": "9007199254740993"}
    assert transfer["status"] == "TRANSFER_STATUS_POSTED"
    assert transfer["reference"] == ""  # defaults are printed
    only_transfer = json.loads(render_response(reply, "transfer"))
    assert only_transfer["transferId"] == "t-1"


def test_idempotency_field_is_request_id_else_the_creates_id() -> None:
    create = _method("CreateTransfer")
    post = _method("PostPendingTransfer")
    get = _method("GetAccount")
    assert idempotency_field(create, create.bindings[0]) == "transfer_id"
    assert idempotency_field(post, post.bindings[0]) == "request_id"
    assert idempotency_field(get, get.bindings[0]) is None
    login = public_method_index()["/wallet.auth.v1.AuthService/Login"]
    verify = public_method_index()["/wallet.auth.v1.AuthService/VerifyMfa"]
    assert idempotency_field(login, login.bindings[0]) is None
    assert idempotency_field(verify, verify.bindings[0]) is None


def test_idempotency_key_never_overwrites_a_different_body_value() -> None:
    request = ledger_accounts_pb2.OpenAccountRequest()
    set_string_path(request, "account_id", "k-1", source="Idempotency-Key header")
    assert request.account_id == "k-1"
    set_string_path(request, "account_id", "k-1", source="Idempotency-Key header")
    with pytest.raises(InvalidArgument) as error:
        set_string_path(request, "account_id", "k-2", source="Idempotency-Key header")
    assert _violation(error) == ("accountId", "differs between the body and the Idempotency-Key header")


def test_body_field_binding_takes_one_field_from_the_body_and_the_rest_from_the_query() -> None:
    # No contract uses `body: "field"` today: bind CreateTransfer's `amount` that way to exercise it.
    method = _method("CreateTransfer")
    binding = HttpBinding("POST", parse_template("/v1/things/{transfer_id}"), body="amount", response_body="")
    request = build_request(
        method,
        binding,
        path_variables={"transfer_id": "t-5"},
        query=[("reference", "rent"), ("debitAccountId", "a-1")],
        body={"currency": "EUR", "amountMinor": "42"},
        reject_unknown=True,
    )
    assert isinstance(request, ledger_transfers_pb2.CreateTransferRequest)
    assert request.transfer_id == "t-5"
    assert request.reference == "rent"
    assert request.debit_account_id == "a-1"
    assert request.amount.amount_minor == 42
    with pytest.raises(InvalidArgument) as error:
        build_request(
            method, binding, path_variables={}, query=[("amount.currency", "EUR")], body=None, reject_unknown=True
        )
    assert _violation(error) == ("amount.currency", "unknown field")
