"""``python -m services.auth [serve|migrate|bootstrap-platform-client ...]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from services.auth import bootstrap
from services.auth.app import AuthApplication
from services.auth.config import load_auth_settings
from services.auth.retention import load_auth_retention
from services.kit.config import ConfigError, Env
from services.kit.grpc_server import Registration, Runtime
from services.kit.service_main import BackgroundJob, ServiceSpec, main
from services.kit.tokens import TokenVerifier

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class _Application:
    """The one AuthApplication of this process, made when the server hands over its runtime."""

    def __init__(self) -> None:
        self._app: AuthApplication | None = None

    def get(self, runtime: Runtime) -> AuthApplication:
        if self._app is None:
            self._app = AuthApplication(runtime, load_auth_settings(), retention=load_auth_retention(Env()))
        assert self._app.runtime is runtime
        return self._app

    def verifier(self, runtime: Runtime) -> TokenVerifier:
        return self.get(runtime).verifier

    def build(self, runtime: Runtime) -> Sequence[Registration]:
        return self.get(runtime).registrations()

    def background_jobs(self, runtime: Runtime) -> Sequence[BackgroundJob]:
        return self.get(runtime).background_jobs()


def spec() -> ServiceSpec:
    application = _Application()
    return ServiceSpec(
        name="auth",
        migrations_dir=MIGRATIONS_DIR,
        build=application.build,
        verifier=application.verifier,
        background_jobs=application.background_jobs,
    )


def run(argv: Sequence[str]) -> int:
    if argv[:1] == ["bootstrap-platform-client"]:
        return bootstrap.main(argv[1:])
    if argv[:1] in ([], ["serve"]):
        try:
            load_auth_settings()  # fail fast, with one line, before anything starts
            load_auth_retention(Env())
        except ConfigError as err:
            print(f"auth: configuration error: {err}", file=sys.stderr)
            return 2
    return main(spec(), argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
