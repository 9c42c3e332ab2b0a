"""SQL for the invariant checks: Σ debits = Σ credits per currency per tenant, balance rules, balances equal to
their postings, every posted transfer in the chain. Whole-table scans on purpose: it runs as a periodic job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

# InvariantKind numbers from ledger_integrity.proto.
DEBITS_EQUAL_CREDITS = 1
BALANCE_RULE = 2
BALANCE_EQUALS_POSTINGS = 3
TRANSFER_IN_CHAIN = 4
FINDINGS_MAX = 100


@dataclass(frozen=True, slots=True)
class InvariantFinding:
    kind: int
    organization_id: uuid.UUID
    currency: str
    account_id: str
    transfer_id: str
    detail: str


class InvariantStore:
    async def transfer_sequence(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID, transfer_id: uuid.UUID
    ) -> int | None:
        value = await connection.fetchval(
            "SELECT sequence FROM transfers WHERE organization_id = $1 AND transfer_id = $2",
            organization_id,
            transfer_id,
        )
        return None if value is None else int(value)

    async def invariant_findings(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID | None
    ) -> tuple[list[tuple[uuid.UUID, str, int, int]], list[InvariantFinding]]:
        totals_rows = await connection.fetch(
            """SELECT organization_id, currency, sum(posted_debits_minor)::bigint AS debits,
                      sum(posted_credits_minor)::bigint AS credits
               FROM accounts WHERE ($1::uuid IS NULL OR organization_id = $1)
               GROUP BY organization_id, currency ORDER BY organization_id, currency""",
            organization_id,
        )
        totals = [(r["organization_id"], r["currency"], int(r["debits"]), int(r["credits"])) for r in totals_rows]
        findings = [
            InvariantFinding(DEBITS_EQUAL_CREDITS, org, currency, "", "", f"debits {d} != credits {c}")
            for org, currency, d, c in totals
            if d != c
        ]
        rule_rows = await connection.fetch(
            """SELECT organization_id, account_id, currency FROM accounts
               WHERE ($1::uuid IS NULL OR organization_id = $1) AND (
                 (balance_rule = 1 AND posted_debits_minor + pending_debits_minor
                                       > posted_credits_minor + credit_limit_minor)
                 OR (balance_rule = 2 AND posted_credits_minor + pending_credits_minor
                                       > posted_debits_minor + credit_limit_minor))
               LIMIT $2""",
            organization_id,
            FINDINGS_MAX,
        )
        findings += [
            InvariantFinding(
                BALANCE_RULE, r["organization_id"], r["currency"], str(r["account_id"]), "", "balance rule violated"
            )
            for r in rule_rows
        ]
        posting_rows = await connection.fetch(
            """SELECT a.organization_id, a.account_id, a.currency FROM accounts a
               LEFT JOIN LATERAL (SELECT p.posted_debits_after, p.posted_credits_after FROM postings p
                                  WHERE p.organization_id = a.organization_id AND p.account_id = a.account_id
                                  ORDER BY p.posted_at DESC, p.account_seq DESC LIMIT 1) last ON true
               LEFT JOIN LATERAL (SELECT coalesce(sum(amount_minor) FILTER (WHERE side = 1), 0) AS debits,
                                         coalesce(sum(amount_minor) FILTER (WHERE side = 2), 0) AS credits
                                  FROM postings p WHERE p.organization_id = a.organization_id
                                    AND p.account_id = a.account_id) total ON true
               WHERE ($1::uuid IS NULL OR a.organization_id = $1)
                 AND (coalesce(last.posted_debits_after, 0) <> a.posted_debits_minor
                      OR coalesce(last.posted_credits_after, 0) <> a.posted_credits_minor
                      OR total.debits <> a.posted_debits_minor OR total.credits <> a.posted_credits_minor)
               LIMIT $2""",
            organization_id,
            FINDINGS_MAX,
        )
        findings += [
            InvariantFinding(
                BALANCE_EQUALS_POSTINGS,
                r["organization_id"],
                r["currency"],
                str(r["account_id"]),
                "",
                "balance differs from its postings",
            )
            for r in posting_rows
        ]
        chain_rows = await connection.fetch(
            """SELECT t.organization_id, t.transfer_id, t.currency FROM transfers t
               WHERE ($1::uuid IS NULL OR t.organization_id = $1) AND t.status = 2 AND NOT EXISTS (
                   SELECT 1 FROM chain_entries e WHERE e.organization_id = t.organization_id
                     AND e.sequence = t.sequence AND e.transfer_id = t.transfer_id)
               LIMIT $2""",
            organization_id,
            FINDINGS_MAX,
        )
        findings += [
            InvariantFinding(
                TRANSFER_IN_CHAIN,
                r["organization_id"],
                r["currency"],
                "",
                str(r["transfer_id"]),
                "posted transfer not in the chain",
            )
            for r in chain_rows
        ]
        return totals, findings
