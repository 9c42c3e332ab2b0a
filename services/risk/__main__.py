"""``python -m services.risk [serve|migrate]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from services.kit.config import ConfigError, Env
from services.kit.grpc_server import Registration, Runtime
from services.kit.service_main import BackgroundJob, ServiceSpec, main
from services.kit.service_tokens import ClientCredentialsTokens, service_client
from services.kit.token_cache import build_cached_verifier
from services.risk.app import RiskApp
from services.risk.config import RiskConfig, load_risk_config
from services.risk.contacts_client import NOTIFICATIONS_SCOPE, GrpcComplaintNotifier
from services.risk.ledger_client import COMPLAINT_SCOPES, LEDGER_REVIEW_SCOPE, GrpcComplaintLedger, GrpcLedgerReviews
from services.risk.server import registrations_for

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class RiskProcess:
    """Builds the app once the kit has made the Runtime, and hands the same app its background jobs."""

    def __init__(self, config: RiskConfig, env: Env) -> None:
        self._config = config
        self._env = env
        self._app: RiskApp | None = None

    def build(self, runtime: Runtime) -> Sequence[Registration]:
        client = service_client(
            self._env.optional_string("RISK_CLIENT_ID"),
            self._env.secret("RISK_CLIENT_SECRET", required=False),
            [LEDGER_REVIEW_SCOPE, *COMPLAINT_SCOPES, NOTIFICATIONS_SCOPE],
        )
        tokens = ClientCredentialsTokens(runtime.config.auth_addr, client)
        self._app = RiskApp(
            runtime,
            self._config,
            GrpcLedgerReviews(self._config.ledger_addr, tokens),
            complaint_ledger=GrpcComplaintLedger(self._config.ledger_addr, tokens),
            notifier=GrpcComplaintNotifier(self._config.contacts_addr, tokens),
        )
        return registrations_for(self._app)(runtime)

    def background_jobs(self, runtime: Runtime) -> Sequence[BackgroundJob]:
        assert self._app is not None
        assert self._app.runtime is runtime
        return self._app.background_jobs()


def spec(env: Env) -> ServiceSpec:
    process = RiskProcess(load_risk_config(env), env)
    return ServiceSpec(
        name="risk",
        migrations_dir=MIGRATIONS_DIR,
        build=process.build,
        verifier=lambda runtime: build_cached_verifier(runtime.config),
        background_jobs=process.background_jobs,
    )


if __name__ == "__main__":
    try:
        risk_spec = spec(Env())
    except ConfigError as err:
        print(f"risk: configuration error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(risk_spec))
