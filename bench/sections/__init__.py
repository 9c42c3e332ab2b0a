"""Bench sections. Each module registers its section at import; add a new one to the import list below, after the
sections it requires."""

from __future__ import annotations

from bench.sections import auth, baseline, contacts, gateway, ledger, ledger_gate, risk

__all__ = ["auth", "baseline", "contacts", "gateway", "ledger", "ledger_gate", "risk"]
