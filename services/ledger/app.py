"""Wiring of one ledger process: the store, the clock, the group committer, the gate and the use-case objects,
built once the runtime's pool exists (the servicer is registered before the server connects)."""

from __future__ import annotations

from functools import cached_property

from services.kit.grpc_server import Runtime
from services.ledger.card_vault import CardVault, NoCardVault
from services.ledger.commit import Clock
from services.ledger.export_keys import ExportKeys
from services.ledger.group_commit import GroupCommitter
from services.ledger.risk_gate import RiskGateSetup
from services.ledger.service import AccountService, utc_now
from services.ledger.service_approvals import ApprovalGate, ApprovalService, PolicyCache
from services.ledger.service_assets import AssetService
from services.ledger.service_cards import CardService
from services.ledger.service_exports import ExportService
from services.ledger.service_fx import FxService
from services.ledger.service_integrity import IntegrityService
from services.ledger.service_invoices import InvoiceService
from services.ledger.service_loyalty import LoyaltyService
from services.ledger.service_pay_by_phone import (
    RESPONSE_FLOOR_S_DEFAULT,
    NoPayeeDirectory,
    PayByPhoneService,
    PayeeDirectory,
)
from services.ledger.service_reversals import ReversalService
from services.ledger.service_statements import StatementService
from services.ledger.service_transfers import NoGate, PreCommitGate, TransferService
from services.ledger.store import PostgresLedgerStore


class LedgerApp:
    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Clock = utc_now,
        gate: PreCommitGate | None = None,
        risk_gate: RiskGateSetup | None = None,
        directory: PayeeDirectory | None = None,
        pay_by_phone_floor_s: float = RESPONSE_FLOOR_S_DEFAULT,
        card_vault: CardVault | None = None,
        export_keys: ExportKeys | None = None,
    ) -> None:
        self.runtime = runtime
        # Pseudonym keys of compliance exports; without them ExportTransactions is UNAVAILABLE.
        self.export_keys = export_keys
        # Card secrets live in the contacts vault; without one, issuing, revealing and closing cards are UNAVAILABLE.
        self.card_vault: CardVault = card_vault or NoCardVault()
        # PayByPhone's way to the contacts vault; without one the RPC answers UNAVAILABLE.
        self.directory: PayeeDirectory = directory or NoPayeeDirectory()
        self.pay_by_phone_floor_s = pay_by_phone_floor_s
        self.clock = clock
        self.store = PostgresLedgerStore()
        if gate is None and risk_gate is not None:
            gate = risk_gate.build(lambda: runtime.pool, self.store)
        self.gate: PreCommitGate = gate or NoGate()

    @cached_property
    def committer(self) -> GroupCommitter:
        return GroupCommitter(self.runtime.pool, self.store, self.clock)

    @cached_property
    def accounts(self) -> AccountService:
        return AccountService(self.runtime.pool, self.store, self.clock)

    @cached_property
    def assets(self) -> AssetService:
        return AssetService(self.runtime.pool, self.store, self.clock)

    @cached_property
    def statements(self) -> StatementService:
        return StatementService(self.runtime.pool, self.store, self.clock)

    @cached_property
    def transfers(self) -> TransferService:
        return TransferService(self.runtime.pool, self.store, self.clock, self.committer, self.transfer_gate)

    @cached_property
    def integrity(self) -> IntegrityService:
        return IntegrityService(self.runtime.pool, self.store, self.clock)

    @cached_property
    def fx(self) -> FxService:
        return FxService(self.runtime.pool, self.store, self.clock)

    @cached_property
    def pay_by_phone(self) -> PayByPhoneService:
        return PayByPhoneService(
            self.runtime.pool,
            self.store,
            self.clock,
            self.committer,
            self.transfer_gate,
            self.directory,
            response_floor_s=self.pay_by_phone_floor_s,
        )

    @cached_property
    def invoices(self) -> InvoiceService:
        return InvoiceService(self.runtime.pool, self.store, self.clock, self.transfer_gate)

    @cached_property
    def reversals(self) -> ReversalService:
        return ReversalService(self.runtime.pool, self.store, self.clock, self.transfer_gate)

    @cached_property
    def policy_cache(self) -> PolicyCache:
        return PolicyCache()

    @cached_property
    def transfer_gate(self) -> PreCommitGate:
        """The gate every new transfer passes: the risk gate (``gate``), then maker-checker."""
        return ApprovalGate(self.runtime.pool, self.store, self.policy_cache, self.gate)

    @cached_property
    def approvals(self) -> ApprovalService:
        return ApprovalService(self.runtime.pool, self.store, self.clock, self.policy_cache)

    @cached_property
    def loyalty(self) -> LoyaltyService:
        return LoyaltyService(self.runtime.pool, self.store, self.clock)

    @cached_property
    def cards(self) -> CardService:
        return CardService(self.runtime.pool, self.store, self.clock, self.card_vault, self.transfer_gate)

    @cached_property
    def exports(self) -> ExportService:
        return ExportService(self.runtime.pool, self.store, self.clock, self.export_keys)
