"""SQL for what links a transfer to the feature that made or decided it: the invoice it paid, the card that
authorized it, the member who approved or rejected it under maker-checker. Each lives in its feature's table
(``invoices``, ``card_payments``, ``transfer_approvals``), so the transfer row stays the same for every flow."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class TransferLinks:
    invoice_id: uuid.UUID | None = None
    card_id: uuid.UUID | None = None
    # The approver (or rejecter) of a maker-checker transfer; empty when none decided it.
    approved_by_principal_id: str = ""


class TransferLinkStore:
    async def transfer_links(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, TransferLinks]:
        """Links of the given transfers (one query for a page); transfers with none are left out."""
        if not transfer_ids:
            return {}
        rows = await connection.fetch(
            """SELECT x.transfer_id, i.invoice_id, p.card_id, a.decided_by_principal_id
               FROM unnest($2::uuid[]) AS x(transfer_id)
               LEFT JOIN invoices i ON i.organization_id = $1 AND i.payment_transfer_id = x.transfer_id
               LEFT JOIN card_payments p ON p.organization_id = $1 AND p.transfer_id = x.transfer_id
               LEFT JOIN transfer_approvals a ON a.organization_id = $1 AND a.transfer_id = x.transfer_id
               WHERE i.invoice_id IS NOT NULL OR p.card_id IS NOT NULL OR a.transfer_id IS NOT NULL""",
            organization_id,
            list(transfer_ids),
        )
        return {
            r["transfer_id"]: TransferLinks(r["invoice_id"], r["card_id"], r["decided_by_principal_id"] or "")
            for r in rows
        }
