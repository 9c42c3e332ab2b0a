"""``python -m services.ledger [serve|migrate]``."""

from __future__ import annotations

import sys
from pathlib import Path

from services.kit.service_main import ServiceSpec, main
from services.ledger.server import registrations

SPEC = ServiceSpec(name="ledger", migrations_dir=Path(__file__).parent / "migrations", build=registrations)

if __name__ == "__main__":
    sys.exit(main(SPEC))
