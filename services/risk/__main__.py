"""``python -m services.risk [serve|migrate]``."""

from __future__ import annotations

import sys
from pathlib import Path

from services.kit.service_main import ServiceSpec, main
from services.risk.server import registrations

SPEC = ServiceSpec(name="risk", migrations_dir=Path(__file__).parent / "migrations", build=registrations)

if __name__ == "__main__":
    sys.exit(main(SPEC))
