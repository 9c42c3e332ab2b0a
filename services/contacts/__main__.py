"""``python -m services.contacts [serve|migrate]``.

The vault's keys are checked before anything else: a missing or malformed key stops the process with one line
naming the variable (exit 2), and so does a key that does not fit the stored data (a wrong KEK or blind-index key,
found by unwrapping one data key per KEK version and re-indexing one contact per index version). Key values are
never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvloop

from services.contacts.config import ContactsConfig, load_contacts_config
from services.contacts.key_check import check_configured_keys
from services.contacts.server import ContactsApp
from services.kit.config import ConfigError, Env, load_service_config
from services.kit.service_main import EXIT_CONFIG, ServiceSpec, main
from services.kit.token_cache import build_cached_verifier

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> ContactsConfig | None:
    try:
        config = load_contacts_config(Path(Env().string("WALLET_RUN_DIR", ".run")))
        problems = uvloop.run(check_configured_keys(load_service_config("contacts"), config))
        if problems:
            raise ConfigError("; ".join(problems))
    except ConfigError as err:
        print(f"contacts: configuration error: {err}", file=sys.stderr)
        return None
    return config


def _spec(config: ContactsConfig) -> ServiceSpec:
    app = ContactsApp(config)
    return ServiceSpec(
        name="contacts",
        migrations_dir=MIGRATIONS_DIR,
        build=app.build,
        # Every call carries one of a few tokens: remember verified ones briefly (services/kit/token_cache.py).
        verifier=lambda runtime: build_cached_verifier(runtime.config),
        background_jobs=app.background_jobs if config.background_jobs else None,
    )


def _migrations_only() -> ServiceSpec:
    # Migrating touches no personal data, so it needs no vault key: a migrations Job mounts only the database URL.
    return ServiceSpec(name="contacts", migrations_dir=MIGRATIONS_DIR, build=lambda runtime: [])


if __name__ == "__main__":
    if sys.argv[1:2] == ["migrate"]:
        sys.exit(main(_migrations_only()))
    loaded = _config()
    sys.exit(EXIT_CONFIG if loaded is None else main(_spec(loaded)))
