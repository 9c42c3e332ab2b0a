"""gRPC servicer for wallet.ledger.v1.LedgerService: proto ⇄ domain types, nothing else.

RPCs not built yet are inherited from the generated base class, which raises NotImplementedError; the kit's
interceptor answers those with UNIMPLEMENTED and reason NOT_IMPLEMENTED — never a fake success.
"""

from __future__ import annotations

from typing import Any

from services.kit.grpc_server import Registration, Runtime
from services.ledger import wire, wire_approvals, wire_cards, wire_exports, wire_invoices, wire_loyalty
from services.ledger.app import LedgerApp
from services.ledger.caller import current_caller
from services.ledger.domain_approvals import ApprovalDecision
from services.ledger.domain_transfers import HoldAction
from services.ledger.service_pay_by_phone import PayByPhoneRequest
from wallet.ledger.v1 import (
    ledger_accounts_pb2 as accounts_pb2,
)
from wallet.ledger.v1 import (
    ledger_approvals_pb2 as approvals_pb2,
)
from wallet.ledger.v1 import (
    ledger_assets_pb2 as assets_pb2,
)
from wallet.ledger.v1 import (
    ledger_cards_pb2 as cards_pb2,
)
from wallet.ledger.v1 import (
    ledger_fx_pb2 as fx_pb2,
)
from wallet.ledger.v1 import (
    ledger_integrity_pb2 as integrity_pb2,
)
from wallet.ledger.v1 import (
    ledger_invoices_pb2 as invoices_pb2,
)
from wallet.ledger.v1 import (
    ledger_service_pb2,
    ledger_service_pb2_grpc,
)
from wallet.ledger.v1 import (
    ledger_statements_pb2 as statements_pb2,
)
from wallet.ledger.v1 import (
    ledger_transfers_pb2 as transfers_pb2,
)

SERVICE_NAME = ledger_service_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


class LedgerServer(ledger_service_pb2_grpc.LedgerServiceServicer):
    def __init__(self, app: LedgerApp) -> None:
        self._app = app

    # --- accounts and assets ---

    async def OpenAccount(
        self, request: accounts_pb2.OpenAccountRequest, context: Any
    ) -> accounts_pb2.OpenAccountResponse:
        account = await self._app.accounts.open_account(
            current_caller(),
            account_id=request.account_id,
            customer_id=request.customer_id,
            kind=request.kind,
            currency=request.currency,
            balance_rule=request.balance_rule,
            credit_limit=wire.money_in(request.credit_limit, request.HasField("credit_limit")),
            daily_outflow_limit=wire.money_in(request.daily_outflow_limit, request.HasField("daily_outflow_limit")),
            label=request.label,
        )
        return accounts_pb2.OpenAccountResponse(account=wire.account_out(account, self._app.clock()))

    async def GetAccount(
        self, request: accounts_pb2.GetAccountRequest, context: Any
    ) -> accounts_pb2.GetAccountResponse:
        account = await self._app.accounts.get_account(current_caller(), request.account_id)
        return accounts_pb2.GetAccountResponse(account=wire.account_out(account, self._app.clock()))

    async def ListAccounts(
        self, request: accounts_pb2.ListAccountsRequest, context: Any
    ) -> accounts_pb2.ListAccountsResponse:
        page = await self._app.accounts.list_accounts(
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            customer_id=request.customer_id,
            kind=request.kind,
            currency=request.currency,
            status=request.status,
        )
        now = self._app.clock()
        return accounts_pb2.ListAccountsResponse(
            accounts=[wire.account_out(a, now) for a in page.items], next_page_token=page.next_page_token
        )

    async def FreezeAccount(
        self, request: accounts_pb2.FreezeAccountRequest, context: Any
    ) -> accounts_pb2.FreezeAccountResponse:
        account = await self._app.accounts.change_status(
            current_caller(),
            method="FreezeAccount",
            account_id=request.account_id,
            reason=request.reason,
            request_id=request.request_id,
        )
        return accounts_pb2.FreezeAccountResponse(account=wire.account_out(account, self._app.clock()))

    async def UnfreezeAccount(
        self, request: accounts_pb2.UnfreezeAccountRequest, context: Any
    ) -> accounts_pb2.UnfreezeAccountResponse:
        account = await self._app.accounts.change_status(
            current_caller(),
            method="UnfreezeAccount",
            account_id=request.account_id,
            reason=request.reason,
            request_id=request.request_id,
        )
        return accounts_pb2.UnfreezeAccountResponse(account=wire.account_out(account, self._app.clock()))

    async def CloseAccount(
        self, request: accounts_pb2.CloseAccountRequest, context: Any
    ) -> accounts_pb2.CloseAccountResponse:
        account = await self._app.accounts.change_status(
            current_caller(),
            method="CloseAccount",
            account_id=request.account_id,
            reason=request.reason,
            request_id=request.request_id,
        )
        return accounts_pb2.CloseAccountResponse(account=wire.account_out(account, self._app.clock()))

    async def UpdateAccountLimits(
        self, request: accounts_pb2.UpdateAccountLimitsRequest, context: Any
    ) -> accounts_pb2.UpdateAccountLimitsResponse:
        account = await self._app.accounts.update_limits(
            current_caller(),
            account_id=request.account_id,
            paths=list(request.update_mask.paths),
            credit_limit=wire.money_in(request.credit_limit, request.HasField("credit_limit")),
            daily_outflow_limit=wire.money_in(request.daily_outflow_limit, request.HasField("daily_outflow_limit")),
            request_id=request.request_id,
        )
        return accounts_pb2.UpdateAccountLimitsResponse(account=wire.account_out(account, self._app.clock()))

    async def DefineAsset(
        self, request: assets_pb2.DefineAssetRequest, context: Any
    ) -> assets_pb2.DefineAssetResponse:
        asset, created_at = await self._app.assets.define_asset(
            current_caller(), asset_code=request.asset_code, scale=request.scale, display_name=request.display_name
        )
        return assets_pb2.DefineAssetResponse(asset=wire.asset_out(asset, created_at))

    async def ListAssets(self, request: assets_pb2.ListAssetsRequest, context: Any) -> assets_pb2.ListAssetsResponse:
        page = await self._app.assets.list_assets(
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            include_iso=request.include_iso_currencies,
        )
        return assets_pb2.ListAssetsResponse(
            assets=[wire.asset_out(c, t) for c, t in page.items], next_page_token=page.next_page_token
        )

    # --- transfers ---

    async def CreateTransfer(
        self, request: transfers_pb2.CreateTransferRequest, context: Any
    ) -> transfers_pb2.CreateTransferResponse:
        transfer = await self._app.transfers.create_transfer(current_caller(), wire.transfer_request_in(request))
        return transfers_pb2.CreateTransferResponse(transfer=wire.transfer_out(transfer))

    async def PayByPhone(
        self, request: transfers_pb2.PayByPhoneRequest, context: Any
    ) -> transfers_pb2.PayByPhoneResponse:
        paid = await self._app.pay_by_phone.pay_by_phone(
            current_caller(),
            PayByPhoneRequest(
                transfer_id=request.transfer_id,
                debit_account_id=request.debit_account_id,
                phone_number=request.phone_number,
                region_hint=request.region_hint,
                amount=wire.money_in(request.amount, request.HasField("amount")),
                reference=request.reference,
            ),
        )
        return transfers_pb2.PayByPhoneResponse(
            transfer=wire.transfer_out(paid.transfer), masked_phone_number=paid.masked_phone_number
        )

    async def GetTransfer(
        self, request: transfers_pb2.GetTransferRequest, context: Any
    ) -> transfers_pb2.GetTransferResponse:
        caller = current_caller()
        transfer = await self._app.transfers.get_transfer(caller, request.transfer_id)
        links = await self._app.transfers.links_of(caller, [transfer])
        return transfers_pb2.GetTransferResponse(
            transfer=wire.transfer_out(transfer, links.get(transfer.transfer_id))
        )

    async def ListTransfers(
        self, request: transfers_pb2.ListTransfersRequest, context: Any
    ) -> transfers_pb2.ListTransfersResponse:
        caller = current_caller()
        page = await self._app.transfers.list_transfers(
            caller,
            page_size=request.page_size,
            page_token=request.page_token,
            account_id=request.account_id,
            status=request.status,
            kind=request.kind,
            start_time=wire.timestamp_in(request.start_time, request.HasField("start_time")),
            end_time=wire.timestamp_in(request.end_time, request.HasField("end_time")),
            batch_id=request.batch_id,
        )
        links = await self._app.transfers.links_of(caller, page.items)
        return transfers_pb2.ListTransfersResponse(
            transfers=[wire.transfer_out(t, links.get(t.transfer_id)) for t in page.items],
            next_page_token=page.next_page_token,
        )

    async def PostPendingTransfer(
        self, request: transfers_pb2.PostPendingTransferRequest, context: Any
    ) -> transfers_pb2.PostPendingTransferResponse:
        transfer = await self._app.transfers.finalize(
            current_caller(),
            transfer_id=request.transfer_id,
            request_id=request.request_id,
            action=HoldAction.POST,
            amount=wire.money_in(request.amount, request.HasField("amount")),
        )
        return transfers_pb2.PostPendingTransferResponse(transfer=wire.transfer_out(transfer))

    async def VoidPendingTransfer(
        self, request: transfers_pb2.VoidPendingTransferRequest, context: Any
    ) -> transfers_pb2.VoidPendingTransferResponse:
        transfer = await self._app.transfers.finalize(
            current_caller(), transfer_id=request.transfer_id, request_id=request.request_id, action=HoldAction.VOID
        )
        return transfers_pb2.VoidPendingTransferResponse(transfer=wire.transfer_out(transfer))

    async def CreateTransferBatch(
        self, request: transfers_pb2.CreateTransferBatchRequest, context: Any
    ) -> transfers_pb2.CreateTransferBatchResponse:
        results = await self._app.transfers.create_batch(
            current_caller(),
            batch_id=request.batch_id,
            requests=[wire.transfer_request_in(item) for item in request.transfers],
            atomic=request.atomic,
        )
        return transfers_pb2.CreateTransferBatchResponse(
            batch_id=request.batch_id, results=[wire.batch_result_out(r) for r in results]
        )

    async def ReverseTransfer(
        self, request: transfers_pb2.ReverseTransferRequest, context: Any
    ) -> transfers_pb2.ReverseTransferResponse:
        reversal = await self._app.reversals.reverse_transfer(current_caller(), wire.reversal_request_in(request))
        return wire.reversal_out(reversal)

    async def ResolveTransferReview(
        self, request: approvals_pb2.ResolveTransferReviewRequest, context: Any
    ) -> approvals_pb2.ResolveTransferReviewResponse:
        transfer = await self._app.transfers.resolve_transfer_review(
            current_caller(),
            transfer_id=request.transfer_id,
            case_id=request.case_id,
            approve=wire.review_outcome_in(request.outcome),
            request_id=request.request_id,
        )
        return approvals_pb2.ResolveTransferReviewResponse(transfer=wire.transfer_out(transfer))

    # --- statements ---

    async def GetStatement(
        self, request: statements_pb2.GetStatementRequest, context: Any
    ) -> statements_pb2.GetStatementResponse:
        statement = await self._app.statements.statement(
            current_caller(),
            account_id=request.account_id,
            start_time=wire.timestamp_in(request.start_time, request.HasField("start_time")),
            end_time=wire.timestamp_in(request.end_time, request.HasField("end_time")),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return wire.statement_out(statement)

    async def GetBalanceAt(
        self, request: statements_pb2.GetBalanceAtRequest, context: Any
    ) -> statements_pb2.GetBalanceAtResponse:
        as_of = wire.timestamp_in(request.as_of, request.HasField("as_of"))
        account, balance = await self._app.statements.balance_at(
            current_caller(), account_id=request.account_id, as_of=as_of
        )
        assert as_of is not None
        return statements_pb2.GetBalanceAtResponse(balance=wire.balance_at_out(account, balance, as_of))

    # --- integrity ---

    async def VerifyChain(
        self, request: integrity_pb2.VerifyChainRequest, context: Any
    ) -> integrity_pb2.VerifyChainResponse:
        verdict = await self._app.integrity.verify_chain(
            current_caller(), start_sequence=request.start_sequence, end_sequence=request.end_sequence
        )
        return wire.verdict_out(verdict)

    async def GetInclusionProof(
        self, request: integrity_pb2.GetInclusionProofRequest, context: Any
    ) -> integrity_pb2.GetInclusionProofResponse:
        proof = await self._app.integrity.inclusion_proof(
            current_caller(), transfer_id=request.transfer_id, sequence=request.sequence
        )
        return integrity_pb2.GetInclusionProofResponse(proof=wire.proof_out(proof))

    async def CheckInvariants(
        self, request: integrity_pb2.CheckInvariantsRequest, context: Any
    ) -> integrity_pb2.CheckInvariantsResponse:
        report = await self._app.integrity.check_invariants(current_caller().organization_id)
        return wire.invariants_out(report)

    async def ListAuditEvents(
        self, request: integrity_pb2.ListAuditEventsRequest, context: Any
    ) -> integrity_pb2.ListAuditEventsResponse:
        page = await self._app.assets.list_audit_events(
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            resource_id=request.resource_id,
            actor_principal_id=request.actor_principal_id,
            start_time=wire.timestamp_in(request.start_time, request.HasField("start_time")),
            end_time=wire.timestamp_in(request.end_time, request.HasField("end_time")),
            export_id=request.export_id,
        )
        return integrity_pb2.ListAuditEventsResponse(
            audit_events=[wire.audit_event_out(e) for e in page.items], next_page_token=page.next_page_token
        )

    async def ExportTransactions(
        self, request: integrity_pb2.ExportTransactionsRequest, context: Any
    ) -> integrity_pb2.ExportTransactionsResponse:
        page = await self._app.exports.export_transactions(
            current_caller(),
            export_id=request.export_id,
            start_time=wire.timestamp_in(request.start_time, request.HasField("start_time")),
            end_time=wire.timestamp_in(request.end_time, request.HasField("end_time")),
            pseudonym_key_id=request.pseudonym_key_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return integrity_pb2.ExportTransactionsResponse(
            transfers=[wire_exports.exported_transfer_out(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    # --- fx ---

    async def SetFxRate(self, request: fx_pb2.SetFxRateRequest, context: Any) -> fx_pb2.SetFxRateResponse:
        rate = await self._app.fx.set_rate(
            current_caller(),
            base=request.base_currency,
            quote=request.quote_currency,
            rate=request.rate,
            valid_until=wire.timestamp_in(request.valid_until, request.HasField("valid_until")),
            request_id=request.request_id,
        )
        return fx_pb2.SetFxRateResponse(fx_rate=wire.fx_rate_out(rate))

    async def GetFxRate(self, request: fx_pb2.GetFxRateRequest, context: Any) -> fx_pb2.GetFxRateResponse:
        rate = await self._app.fx.get_rate(current_caller(), base=request.base_currency, quote=request.quote_currency)
        return fx_pb2.GetFxRateResponse(fx_rate=wire.fx_rate_out(rate))

    async def QuoteExchange(self, request: fx_pb2.QuoteExchangeRequest, context: Any) -> fx_pb2.QuoteExchangeResponse:
        quote = await self._app.fx.quote(
            current_caller(),
            quote_id=request.quote_id,
            debit_account_id=request.debit_account_id,
            credit_account_id=request.credit_account_id,
            sell=wire.money_in(request.sell_amount, request.HasField("sell_amount")),
            buy=wire.money_in(request.buy_amount, request.HasField("buy_amount")),
            ttl_s=request.quote_ttl.seconds,
        )
        return fx_pb2.QuoteExchangeResponse(quote=wire.quote_out(quote))

    async def Exchange(self, request: fx_pb2.ExchangeRequest, context: Any) -> fx_pb2.ExchangeResponse:
        result = await self._app.fx.exchange(
            current_caller(), exchange_id=request.exchange_id, quote_id=request.quote_id
        )
        return fx_pb2.ExchangeResponse(exchange=wire.exchange_out(result))

    # --- invoices ---

    async def CreateInvoice(
        self, request: invoices_pb2.CreateInvoiceRequest, context: Any
    ) -> invoices_pb2.CreateInvoiceResponse:
        invoice = await self._app.invoices.create_invoice(current_caller(), wire_invoices.create_request_in(request))
        return invoices_pb2.CreateInvoiceResponse(invoice=wire_invoices.invoice_out(invoice, self._app.clock()))

    async def GetInvoice(
        self, request: invoices_pb2.GetInvoiceRequest, context: Any
    ) -> invoices_pb2.GetInvoiceResponse:
        invoice = await self._app.invoices.get_invoice(current_caller(), request.invoice_id)
        return invoices_pb2.GetInvoiceResponse(invoice=wire_invoices.invoice_out(invoice, self._app.clock()))

    async def ListInvoices(
        self, request: invoices_pb2.ListInvoicesRequest, context: Any
    ) -> invoices_pb2.ListInvoicesResponse:
        page = await self._app.invoices.list_invoices(
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            payee_account_id=request.payee_account_id,
            payer_customer_id=request.payer_customer_id,
            status=request.status,
        )
        now = self._app.clock()
        return invoices_pb2.ListInvoicesResponse(
            invoices=[wire_invoices.invoice_out(i, now) for i in page.items], next_page_token=page.next_page_token
        )

    async def PayInvoice(
        self, request: invoices_pb2.PayInvoiceRequest, context: Any
    ) -> invoices_pb2.PayInvoiceResponse:
        payment = await self._app.invoices.pay_invoice(
            current_caller(),
            transfer_id=request.transfer_id,
            invoice_id=request.invoice_id,
            debit_account_id=request.debit_account_id,
        )
        return invoices_pb2.PayInvoiceResponse(
            invoice=wire_invoices.invoice_out(payment.invoice, self._app.clock()),
            transfer=wire_invoices.payment_transfer_out(payment.transfer, payment.invoice),
        )

    async def CancelInvoice(
        self, request: invoices_pb2.CancelInvoiceRequest, context: Any
    ) -> invoices_pb2.CancelInvoiceResponse:
        invoice = await self._app.invoices.cancel_invoice(
            current_caller(), invoice_id=request.invoice_id, reason=request.reason, request_id=request.request_id
        )
        return invoices_pb2.CancelInvoiceResponse(invoice=wire_invoices.invoice_out(invoice, self._app.clock()))

    # --- maker-checker ---

    async def SetApprovalPolicy(
        self, request: approvals_pb2.SetApprovalPolicyRequest, context: Any
    ) -> approvals_pb2.SetApprovalPolicyResponse:
        policy = await self._app.approvals.set_policy(
            current_caller(), rules=wire_approvals.rules_in(request.policy), request_id=request.request_id
        )
        return approvals_pb2.SetApprovalPolicyResponse(policy=wire_approvals.policy_out(policy))

    async def GetApprovalPolicy(
        self, request: approvals_pb2.GetApprovalPolicyRequest, context: Any
    ) -> approvals_pb2.GetApprovalPolicyResponse:
        policy = await self._app.approvals.get_policy(current_caller())
        return approvals_pb2.GetApprovalPolicyResponse(policy=wire_approvals.policy_out(policy))

    async def ApproveTransfer(
        self, request: approvals_pb2.ApproveTransferRequest, context: Any
    ) -> approvals_pb2.ApproveTransferResponse:
        decided = await self._app.approvals.decide(
            current_caller(),
            transfer_id=request.transfer_id,
            request_id=request.request_id,
            decision=ApprovalDecision.APPROVED,
            note=request.note,
        )
        return approvals_pb2.ApproveTransferResponse(transfer=wire_approvals.decided_out(decided))

    async def RejectTransfer(
        self, request: approvals_pb2.RejectTransferRequest, context: Any
    ) -> approvals_pb2.RejectTransferResponse:
        decided = await self._app.approvals.decide(
            current_caller(),
            transfer_id=request.transfer_id,
            request_id=request.request_id,
            decision=ApprovalDecision.REJECTED,
            note=request.reason,
        )
        return approvals_pb2.RejectTransferResponse(transfer=wire_approvals.decided_out(decided))

    async def ListPendingApprovals(
        self, request: approvals_pb2.ListPendingApprovalsRequest, context: Any
    ) -> approvals_pb2.ListPendingApprovalsResponse:
        page = await self._app.approvals.list_pending(
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            account_id=request.account_id,
            exclude_own=request.exclude_own,
        )
        return approvals_pb2.ListPendingApprovalsResponse(
            transfers=[wire.transfer_out(t) for t in page.items], next_page_token=page.next_page_token
        )

    # --- loyalty ---

    async def SetEarnRules(
        self, request: assets_pb2.SetEarnRulesRequest, context: Any
    ) -> assets_pb2.SetEarnRulesResponse:
        rules = await self._app.loyalty.set_rules(
            current_caller(), rules=wire_loyalty.rules_in(list(request.earn_rules)), request_id=request.request_id
        )
        return assets_pb2.SetEarnRulesResponse(earn_rules=wire_loyalty.rules_out(rules))

    async def GetEarnRules(
        self, request: assets_pb2.GetEarnRulesRequest, context: Any
    ) -> assets_pb2.GetEarnRulesResponse:
        rules = await self._app.loyalty.get_rules(current_caller())
        return assets_pb2.GetEarnRulesResponse(earn_rules=wire_loyalty.rules_out(rules))

    # --- virtual cards ---

    async def IssueCard(self, request: cards_pb2.IssueCardRequest, context: Any) -> cards_pb2.IssueCardResponse:
        limits = request.limits
        card = await self._app.cards.issue_card(
            current_caller(),
            card_id=request.card_id,
            account_id=request.account_id,
            per_transaction_limit=wire.money_in(
                limits.per_transaction_limit, limits.HasField("per_transaction_limit")
            ),
            daily_limit=wire.money_in(limits.daily_limit, limits.HasField("daily_limit")),
            label=request.label,
        )
        return cards_pb2.IssueCardResponse(card=wire_cards.card_out(card, self._app.clock()))

    async def GetCard(self, request: cards_pb2.GetCardRequest, context: Any) -> cards_pb2.GetCardResponse:
        card = await self._app.cards.get_card(current_caller(), request.card_id)
        return cards_pb2.GetCardResponse(card=wire_cards.card_out(card, self._app.clock()))

    async def ListCards(self, request: cards_pb2.ListCardsRequest, context: Any) -> cards_pb2.ListCardsResponse:
        page = await self._app.cards.list_cards(
            current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            account_id=request.account_id,
            status=request.status,
        )
        now = self._app.clock()
        return cards_pb2.ListCardsResponse(
            cards=[wire_cards.card_out(c, now) for c in page.items], next_page_token=page.next_page_token
        )

    async def FreezeCard(self, request: cards_pb2.FreezeCardRequest, context: Any) -> cards_pb2.FreezeCardResponse:
        card = await self._app.cards.change_status(
            current_caller(), method="FreezeCard", card_id=request.card_id, request_id=request.request_id
        )
        return cards_pb2.FreezeCardResponse(card=wire_cards.card_out(card, self._app.clock()))

    async def UnfreezeCard(
        self, request: cards_pb2.UnfreezeCardRequest, context: Any
    ) -> cards_pb2.UnfreezeCardResponse:
        card = await self._app.cards.change_status(
            current_caller(), method="UnfreezeCard", card_id=request.card_id, request_id=request.request_id
        )
        return cards_pb2.UnfreezeCardResponse(card=wire_cards.card_out(card, self._app.clock()))

    async def CloseCard(self, request: cards_pb2.CloseCardRequest, context: Any) -> cards_pb2.CloseCardResponse:
        card = await self._app.cards.change_status(
            current_caller(), method="CloseCard", card_id=request.card_id, request_id=request.request_id
        )
        return cards_pb2.CloseCardResponse(card=wire_cards.card_out(card, self._app.clock()))

    async def UpdateCardLimits(
        self, request: cards_pb2.UpdateCardLimitsRequest, context: Any
    ) -> cards_pb2.UpdateCardLimitsResponse:
        limits = request.limits
        card = await self._app.cards.update_limits(
            current_caller(),
            card_id=request.card_id,
            paths=list(request.update_mask.paths),
            per_transaction_limit=wire.money_in(
                limits.per_transaction_limit, limits.HasField("per_transaction_limit")
            ),
            daily_limit=wire.money_in(limits.daily_limit, limits.HasField("daily_limit")),
            request_id=request.request_id,
        )
        return cards_pb2.UpdateCardLimitsResponse(card=wire_cards.card_out(card, self._app.clock()))

    async def RevealCard(self, request: cards_pb2.RevealCardRequest, context: Any) -> cards_pb2.RevealCardResponse:
        _, revealed = await self._app.cards.reveal(current_caller(), request.card_id)
        return cards_pb2.RevealCardResponse(
            card_number=revealed.card_number,
            cvv=revealed.cvv,
            expiry_month=revealed.expiry_month,
            expiry_year=revealed.expiry_year,
        )

    async def AuthorizeCardPayment(
        self, request: cards_pb2.AuthorizeCardPaymentRequest, context: Any
    ) -> cards_pb2.AuthorizeCardPaymentResponse:
        transfer = await self._app.cards.authorize_payment(current_caller(), wire_cards.payment_request_in(request))
        return cards_pb2.AuthorizeCardPaymentResponse(transfer=wire.transfer_out(transfer))

    async def CaptureCardPayment(
        self, request: cards_pb2.CaptureCardPaymentRequest, context: Any
    ) -> cards_pb2.CaptureCardPaymentResponse:
        transfer = await self._app.cards.finish_payment(
            current_caller(),
            transfer_id=request.transfer_id,
            request_id=request.request_id,
            capture=True,
            amount=wire.money_in(request.amount, request.HasField("amount")),
        )
        return cards_pb2.CaptureCardPaymentResponse(transfer=wire.transfer_out(transfer))

    async def ReleaseCardPayment(
        self, request: cards_pb2.ReleaseCardPaymentRequest, context: Any
    ) -> cards_pb2.ReleaseCardPaymentResponse:
        transfer = await self._app.cards.finish_payment(
            current_caller(), transfer_id=request.transfer_id, request_id=request.request_id, capture=False
        )
        return cards_pb2.ReleaseCardPaymentResponse(transfer=wire.transfer_out(transfer))


def build_app(runtime: Runtime) -> LedgerApp:
    return LedgerApp(runtime)


def registrations_for(app: LedgerApp) -> list[Registration]:
    servicer = LedgerServer(app)
    return [Registration(SERVICE_NAME, ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server, servicer)]


def registrations(runtime: Runtime) -> list[Registration]:
    return registrations_for(build_app(runtime))
