"""``python -m services.contacts [serve|migrate]``.

The vault's keys are read before anything else: a missing or malformed key stops the process with one line naming
the variable (exit 2), never its value.
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.contacts.config import load_contacts_config
from services.contacts.server import ContactsApp
from services.kit.config import ConfigError, Env
from services.kit.service_main import EXIT_CONFIG, ServiceSpec, main


def _spec() -> ServiceSpec | None:
    try:
        config = load_contacts_config(Path(Env().string("WALLET_RUN_DIR", ".run")))
    except ConfigError as err:
        print(f"contacts: configuration error: {err}", file=sys.stderr)
        return None
    app = ContactsApp(config)
    return ServiceSpec(
        name="contacts",
        migrations_dir=Path(__file__).parent / "migrations",
        build=app.build,
        background_jobs=app.background_jobs if config.background_jobs else None,
    )


if __name__ == "__main__":
    spec = _spec()
    sys.exit(EXIT_CONFIG if spec is None else main(spec))
