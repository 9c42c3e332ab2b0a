"""Accounts and assets through the real server: open (idempotent), read, list, lifecycle, limits, tenancy."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from services.kit.status import ErrorDetails
from tests.integration.ledger.conftest import LedgerHarness
from wallet.common.v1 import money_pb2
from wallet.ledger.v1 import ledger_accounts_pb2 as pb
from wallet.ledger.v1 import ledger_assets_pb2 as assets_pb
from wallet.ledger.v1 import ledger_integrity_pb2 as integrity_pb

pytestmark = pytest.mark.integration


async def _error(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


async def test_open_account_is_idempotent_and_names_the_differing_field(ledger: LedgerHarness) -> None:
    account_id = str(uuid.uuid4())
    request = pb.OpenAccountRequest(
        account_id=account_id, kind=pb.ACCOUNT_KIND_OPERATING, currency="EUR", label="ops"
    )
    first = await ledger.stub.OpenAccount(request, metadata=ledger.auth())
    again = await ledger.stub.OpenAccount(request, metadata=ledger.auth())
    first.account.balance.ClearField("as_of")
    again.account.balance.ClearField("as_of")
    assert first.account == again.account
    assert first.account.balance_rule == pb.BALANCE_RULE_DEBITS_MUST_NOT_EXCEED_CREDITS
    assert first.account.status == pb.ACCOUNT_STATUS_ACTIVE
    request.currency = "USD"
    details = await _error(ledger.stub.OpenAccount(request, metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    assert details.metadata["field"] == "currency"


async def test_bad_open_request_lists_every_violation_and_writes_nothing(ledger: LedgerHarness) -> None:
    request = pb.OpenAccountRequest(
        account_id="not-a-uuid",
        kind=pb.ACCOUNT_KIND_OPERATING,
        currency="eur",
        credit_limit=money_pb2.Money(currency="EUR", amount_minor=-1),
    )
    details = await _error(ledger.stub.OpenAccount(request, metadata=ledger.auth()))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details.field_violations}
    assert {"account_id", "currency", "credit_limit.amount_minor"} <= fields


async def test_unknown_currency_is_refused_and_assets_can_be_defined(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    request = pb.OpenAccountRequest(account_id=str(uuid.uuid4()), kind=pb.ACCOUNT_KIND_OPERATING, currency="PTS")
    details = await _error(ledger.stub.OpenAccount(request, metadata=ledger.auth(org=org)))
    assert details.reason == "UNKNOWN_CURRENCY"
    defined = await ledger.stub.DefineAsset(
        assets_pb.DefineAssetRequest(asset_code="PTS", scale=0, display_name="Points"), metadata=ledger.auth(org=org)
    )
    assert defined.asset.iso_currency is False
    opened = await ledger.stub.OpenAccount(request, metadata=ledger.auth(org=org))
    assert opened.account.currency == "PTS"
    listed = await ledger.stub.ListAssets(assets_pb.ListAssetsRequest(), metadata=ledger.auth(org=org))
    assert [a.asset_code for a in listed.assets] == ["PTS"]
    with_iso = await ledger.stub.ListAssets(
        assets_pb.ListAssetsRequest(include_iso_currencies=True, page_size=500), metadata=ledger.auth(org=org)
    )
    scales = {a.asset_code: a.scale for a in with_iso.assets}
    assert scales["JPY"] == 0
    assert scales["BHD"] == 3
    assert scales["PTS"] == 0


async def test_other_tenants_and_other_customers_see_not_found(ledger: LedgerHarness) -> None:
    customer = str(uuid.uuid4())
    wallet = await ledger.open(kind=pb.ACCOUNT_KIND_CUSTOMER_WALLET, customer_id=customer)
    own = await ledger.stub.GetAccount(
        pb.GetAccountRequest(account_id=wallet), metadata=ledger.customer_auth(customer)
    )
    assert own.account.customer_id == customer
    for metadata in (ledger.customer_auth(str(uuid.uuid4())), ledger.auth(org=str(uuid.uuid4()))):
        details = await _error(ledger.stub.GetAccount(pb.GetAccountRequest(account_id=wallet), metadata=metadata))
        assert details.code == grpc.StatusCode.NOT_FOUND
    listed = await ledger.stub.ListAccounts(pb.ListAccountsRequest(), metadata=ledger.customer_auth(customer))
    assert [a.account_id for a in listed.accounts] == [wallet]


async def test_list_accounts_pages_with_a_token_bound_to_filters(ledger: LedgerHarness) -> None:
    org = str(uuid.uuid4())
    opened = sorted([await ledger.open("CHF", org=org) for _ in range(5)])
    seen: list[str] = []
    token = ""
    while True:
        page = await ledger.stub.ListAccounts(
            pb.ListAccountsRequest(page_size=2, page_token=token, currency="CHF"), metadata=ledger.auth(org=org)
        )
        seen += [a.account_id for a in page.accounts]
        token = page.next_page_token
        if not token:
            break
    assert seen == opened
    first = await ledger.stub.ListAccounts(pb.ListAccountsRequest(page_size=2), metadata=ledger.auth(org=org))
    details = await _error(
        ledger.stub.ListAccounts(
            pb.ListAccountsRequest(page_size=2, page_token=first.next_page_token, currency="CHF"),
            metadata=ledger.auth(org=org),
        )
    )
    assert details.reason == "PAGE_TOKEN_INVALID"
    negative = await _error(
        ledger.stub.ListAccounts(pb.ListAccountsRequest(page_size=-1), metadata=ledger.auth(org=org))
    )
    assert negative.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_freeze_unfreeze_close_lifecycle(ledger: LedgerHarness) -> None:
    account = await ledger.open()
    frozen = await ledger.stub.FreezeAccount(
        pb.FreezeAccountRequest(account_id=account, reason="investigation", request_id=str(uuid.uuid4())),
        metadata=ledger.auth(),
    )
    assert frozen.account.status == pb.ACCOUNT_STATUS_FROZEN
    assert frozen.account.freeze_reason == "investigation"
    source = await ledger.open(kind=pb.ACCOUNT_KIND_SUSPENSE)
    details = await _error(ledger.transfer(source, account, 100))
    assert details.reason == "ACCOUNT_FROZEN"
    request_id = str(uuid.uuid4())
    unfreeze = pb.UnfreezeAccountRequest(account_id=account, reason="cleared", request_id=request_id)
    unfrozen = await ledger.stub.UnfreezeAccount(unfreeze, metadata=ledger.auth())
    replay = await ledger.stub.UnfreezeAccount(unfreeze, metadata=ledger.auth())
    assert unfrozen.account.status == replay.account.status == pb.ACCOUNT_STATUS_ACTIVE
    await ledger.transfer(source, account, 100)
    not_empty = await _error(
        ledger.stub.CloseAccount(
            pb.CloseAccountRequest(account_id=account, request_id=str(uuid.uuid4())), metadata=ledger.auth()
        )
    )
    assert not_empty.reason == "ACCOUNT_NOT_EMPTY"
    assert not_empty.metadata["balance_minor"] == "100"
    await ledger.transfer(account, source, 100)
    closed = await ledger.stub.CloseAccount(
        pb.CloseAccountRequest(account_id=account, request_id=str(uuid.uuid4())), metadata=ledger.auth()
    )
    assert closed.account.status == pb.ACCOUNT_STATUS_CLOSED
    assert (await _error(ledger.transfer(source, account, 1))).reason == "ACCOUNT_CLOSED"


async def test_limits_update_is_audited_and_enforced(ledger: LedgerHarness) -> None:
    account = await ledger.open()
    updated = await ledger.stub.UpdateAccountLimits(
        pb.UpdateAccountLimitsRequest(
            account_id=account,
            update_mask=field_mask_pb2.FieldMask(paths=["credit_limit", "daily_outflow_limit"]),
            credit_limit=money_pb2.Money(currency="EUR", amount_minor=500),
            daily_outflow_limit=money_pb2.Money(currency="EUR", amount_minor=300),
            request_id=str(uuid.uuid4()),
        ),
        metadata=ledger.auth(),
    )
    assert updated.account.credit_limit.amount_minor == 500
    assert updated.account.balance.available.amount_minor == 500
    sink = await ledger.open(kind=pb.ACCOUNT_KIND_SUSPENSE)
    await ledger.transfer(account, sink, 200)
    details = await _error(ledger.transfer(account, sink, 200))
    assert details.reason == "DAILY_LIMIT_EXCEEDED"
    assert details.metadata["remaining_minor"] == "100"
    audit = await ledger.stub.ListAuditEvents(
        integrity_pb.ListAuditEventsRequest(resource_id=account), metadata=ledger.auth()
    )
    assert [e.method for e in audit.audit_events] == ["UpdateAccountLimits"]
    assert audit.audit_events[0].details["old_credit_limit_minor"] == "0"
    assert audit.audit_events[0].details["new_credit_limit_minor"] == "500"
    assert audit.audit_events[0].details["new_daily_outflow_limit_minor"] == "300"


async def test_only_account_admins_set_an_overdraft_line(ledger: LedgerHarness) -> None:
    customer = str(uuid.uuid4())
    request = pb.OpenAccountRequest(
        account_id=str(uuid.uuid4()),
        kind=pb.ACCOUNT_KIND_CUSTOMER_WALLET,
        currency="EUR",
        credit_limit=money_pb2.Money(currency="EUR", amount_minor=10_000),
    )
    details = await _error(ledger.stub.OpenAccount(request, metadata=ledger.customer_auth(customer)))
    assert details.code == grpc.StatusCode.PERMISSION_DENIED
    request.customer_id = customer
    opened = await ledger.stub.OpenAccount(request, metadata=ledger.auth(roles=["admin"]))
    assert opened.account.balance.available.amount_minor == 10_000


async def test_customer_opens_only_its_own_wallets(ledger: LedgerHarness) -> None:
    customer = str(uuid.uuid4())
    own = await ledger.stub.OpenAccount(
        pb.OpenAccountRequest(account_id=str(uuid.uuid4()), kind=pb.ACCOUNT_KIND_CUSTOMER_WALLET, currency="EUR"),
        metadata=ledger.customer_auth(customer),
    )
    assert own.account.customer_id == customer
    for request in (
        pb.OpenAccountRequest(
            account_id=str(uuid.uuid4()),
            kind=pb.ACCOUNT_KIND_CUSTOMER_WALLET,
            currency="EUR",
            customer_id=str(uuid.uuid4()),
        ),
        pb.OpenAccountRequest(account_id=str(uuid.uuid4()), kind=pb.ACCOUNT_KIND_OPERATING, currency="EUR"),
    ):
        details = await _error(ledger.stub.OpenAccount(request, metadata=ledger.customer_auth(customer)))
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
