"""``python -m services.auth [serve|migrate]``."""

from __future__ import annotations

import sys
from pathlib import Path

from services.auth.server import registrations
from services.kit.service_main import ServiceSpec, main

SPEC = ServiceSpec(name="auth", migrations_dir=Path(__file__).parent / "migrations", build=registrations)

if __name__ == "__main__":
    sys.exit(main(SPEC))
