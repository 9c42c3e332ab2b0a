"""SQL for loyalty earn rules (one JSON rule set per tenant)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg

from services.ledger.domain_loyalty import EarnRule
from services.ledger.domain_transfers import TransferKind


def _rule_json(rule: EarnRule) -> dict[str, object]:
    return {
        "id": str(rule.earn_rule_id),
        "asset": rule.asset_code,
        "spend": rule.spend_currency,
        "kinds": [int(k) for k in rule.transfer_kinds],
        "points": rule.points_per_step,
        "step": rule.spend_step_minor,
        "funding": str(rule.funding_account_id),
    }


def _rule_from(data: dict[str, object]) -> EarnRule:
    kinds = data["kinds"]
    assert isinstance(kinds, list)
    return EarnRule(
        earn_rule_id=uuid.UUID(str(data["id"])),
        asset_code=str(data["asset"]),
        spend_currency=str(data["spend"]),
        transfer_kinds=tuple(TransferKind(int(k)) for k in kinds),
        points_per_step=int(str(data["points"])),
        spend_step_minor=int(str(data["step"])),
        funding_account_id=uuid.UUID(str(data["funding"])),
    )


class LoyaltyStore:
    async def get_earn_rules(
        self, connection: asyncpg.Connection, organization_id: uuid.UUID
    ) -> tuple[EarnRule, ...]:
        rules = await connection.fetchval(
            "SELECT rules FROM earn_rule_sets WHERE organization_id = $1", organization_id
        )
        if rules is None:
            return ()
        return tuple(_rule_from(r) for r in json.loads(rules))

    async def save_earn_rules(
        self,
        connection: asyncpg.Connection,
        organization_id: uuid.UUID,
        rules: tuple[EarnRule, ...],
        *,
        principal_id: str,
        now: dt.datetime,
    ) -> None:
        await connection.execute(
            """INSERT INTO earn_rule_sets (organization_id, rules, updated_at, updated_by_principal_id)
               VALUES ($1, $2::jsonb, $3, $4)
               ON CONFLICT (organization_id) DO UPDATE
               SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at,
                   updated_by_principal_id = EXCLUDED.updated_by_principal_id""",
            organization_id,
            json.dumps([_rule_json(r) for r in rules]),
            now,
            principal_id,
        )
