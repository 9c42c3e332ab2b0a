"""``python -m services.ledger [serve|migrate]``."""

from __future__ import annotations

import sys
from pathlib import Path

from services.kit.grpc_server import Registration, Runtime
from services.kit.service_main import BackgroundJob, ServiceSpec, main
from services.kit.token_cache import build_cached_verifier
from services.kit.tokens import TokenVerifier
from services.ledger.app import LedgerApp
from services.ledger.jobs import background_jobs
from services.ledger.server import registrations_for


class LedgerProcess:
    """One process's app, shared by the servicer and the background jobs."""

    def __init__(self) -> None:
        self._app: LedgerApp | None = None

    def app(self, runtime: Runtime) -> LedgerApp:
        if self._app is None:
            self._app = LedgerApp(runtime)
        return self._app

    def registrations(self, runtime: Runtime) -> list[Registration]:
        return registrations_for(self.app(runtime))

    def jobs(self, runtime: Runtime) -> list[BackgroundJob]:
        return background_jobs(self.app(runtime))

    def verifier(self, runtime: Runtime) -> TokenVerifier:
        # Every call carries the same few tokens: remember verified ones briefly (services/kit/token_cache.py).
        return build_cached_verifier(runtime.config)


def spec() -> ServiceSpec:
    process = LedgerProcess()
    return ServiceSpec(
        name="ledger",
        migrations_dir=Path(__file__).parent / "migrations",
        build=process.registrations,
        background_jobs=process.jobs,
        verifier=process.verifier,
    )


if __name__ == "__main__":
    sys.exit(main(spec()))
