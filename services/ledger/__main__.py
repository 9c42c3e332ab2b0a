"""``python -m services.ledger [serve|migrate]``."""

from __future__ import annotations

import sys
from pathlib import Path

from services.kit.config import ConfigError, Env, default_addr
from services.kit.grpc_server import Registration, Runtime
from services.kit.retention import RetentionPolicy
from services.kit.service_main import BackgroundJob, ServiceSpec, main
from services.kit.service_tokens import ClientCredentialsTokens, service_client
from services.kit.token_cache import build_cached_verifier
from services.kit.tokens import TokenVerifier
from services.ledger import limits
from services.ledger.app import LedgerApp
from services.ledger.card_vault import CARD_SECRET_SCOPES, CardVault, GrpcCardVault
from services.ledger.contacts_client import DIRECTORY_SCOPE, GrpcPayeeDirectory
from services.ledger.export_keys import ExportKeys, load_export_keys
from services.ledger.jobs import background_jobs
from services.ledger.retention import ledger_retention_job, load_ledger_retention
from services.ledger.risk_gate import ASSESS_SCOPE, RiskGate, RiskGateConfig, RiskGateSetup
from services.ledger.server import registrations_for
from services.ledger.service_pay_by_phone import RESPONSE_FLOOR_S_DEFAULT, PayeeDirectory


class LedgerProcess:
    """One process's app, shared by the servicer and the background jobs."""

    def __init__(
        self,
        risk_gate: RiskGateSetup | None,
        directory: PayeeDirectory | None = None,
        pay_by_phone_floor_s: float = RESPONSE_FLOOR_S_DEFAULT,
        card_vault: CardVault | None = None,
        retention: RetentionPolicy | None = None,
        export_keys: ExportKeys | None = None,
    ) -> None:
        self._risk_gate = risk_gate
        self._retention = retention or load_ledger_retention(Env({}))
        self._export_keys = export_keys
        self._card_vault = card_vault
        self._directory = directory
        self._pay_by_phone_floor_s = pay_by_phone_floor_s
        self._app: LedgerApp | None = None

    def app(self, runtime: Runtime) -> LedgerApp:
        if self._app is None:
            self._app = LedgerApp(
                runtime,
                risk_gate=self._risk_gate,
                directory=self._directory,
                pay_by_phone_floor_s=self._pay_by_phone_floor_s,
                card_vault=self._card_vault,
                export_keys=self._export_keys,
            )
        return self._app

    def registrations(self, runtime: Runtime) -> list[Registration]:
        return registrations_for(self.app(runtime))

    def jobs(self, runtime: Runtime) -> list[BackgroundJob]:
        app = self.app(runtime)
        jobs = background_jobs(app)
        jobs.append(ledger_retention_job(lambda: runtime.pool, self._retention, app.clock).run())
        if isinstance(app.gate, RiskGate):
            jobs.append(app.gate.connect())
        return jobs

    def verifier(self, runtime: Runtime) -> TokenVerifier:
        # Every call carries the same few tokens: remember verified ones briefly (services/kit/token_cache.py).
        return build_cached_verifier(runtime.config)


def load_risk_gate(env: Env) -> RiskGateSetup | None:
    """``RISK_GATE`` (default on) and its settings; on without a platform client is a configuration error."""
    if not env.flag("RISK_GATE", True):
        return None
    defaults = RiskGateConfig()
    config = RiskGateConfig(
        deadline_s=env.integer("RISK_GATE_DEADLINE_MS", int(defaults.deadline_s * 1000), min_value=1) / 1000,
        fail_open_below_minor=env.integer("RISK_GATE_FAIL_OPEN_BELOW_MINOR", defaults.fail_open_below_minor),
        review_hold_s=env.integer(
            "RISK_GATE_REVIEW_HOLD_S", defaults.review_hold_s, min_value=1, max_value=limits.HOLD_TIMEOUT_S_MAX
        ),
    )
    client = service_client(
        env.optional_string("LEDGER_CLIENT_ID"), env.secret("LEDGER_CLIENT_SECRET", required=False), [ASSESS_SCOPE]
    )
    if not client.configured:
        raise ConfigError(
            "RISK_GATE is on but LEDGER_CLIENT_ID and LEDGER_CLIENT_SECRET (or _FILE) are not set "
            "(python -m services.auth bootstrap-platform-client --name ledger --scope risk.assessments.assess)"
        )
    tokens = ClientCredentialsTokens(env.string("AUTH_ADDR", default_addr("auth")), client)
    return RiskGateSetup(config, env.string("RISK_ADDR", default_addr("risk")), tokens)


def load_payee_directory(env: Env) -> PayeeDirectory | None:
    """PayByPhone's contacts client (``CONTACTS_ADDR``), with the ledger's platform client asking for tokens scoped
    to ``contacts.directory.read`` only; without a platform client PayByPhone answers UNAVAILABLE."""
    client = service_client(
        env.optional_string("LEDGER_CLIENT_ID"), env.secret("LEDGER_CLIENT_SECRET", required=False), [DIRECTORY_SCOPE]
    )
    if not client.configured:
        return None
    tokens = ClientCredentialsTokens(env.string("AUTH_ADDR", default_addr("auth")), client)
    return GrpcPayeeDirectory(env.string("CONTACTS_ADDR", default_addr("contacts")), tokens)


def load_card_vault(env: Env) -> CardVault | None:
    """The contacts vault for card secrets, with the ledger's platform client asking for tokens scoped to
    ``contacts.card_secrets.write`` and ``.reveal``; without a platform client, issuing, revealing and closing cards
    answer UNAVAILABLE."""
    client = service_client(
        env.optional_string("LEDGER_CLIENT_ID"),
        env.secret("LEDGER_CLIENT_SECRET", required=False),
        CARD_SECRET_SCOPES,
    )
    if not client.configured:
        return None
    tokens = ClientCredentialsTokens(env.string("AUTH_ADDR", default_addr("auth")), client)
    return GrpcCardVault(env.string("CONTACTS_ADDR", default_addr("contacts")), tokens)


def spec(env: Env, *, serving: bool = True) -> ServiceSpec:
    # Migrating needs no gate (and runs before the platform clients exist).
    floor_ms = env.integer(
        "PAY_BY_PHONE_FLOOR_MS", int(RESPONSE_FLOOR_S_DEFAULT * 1000), min_value=0, max_value=5_000
    )
    process = LedgerProcess(
        load_risk_gate(env) if serving else None,
        load_payee_directory(env) if serving else None,
        floor_ms / 1000,
        load_card_vault(env) if serving else None,
        load_ledger_retention(env),
        export_keys=load_export_keys(env) if serving else None,
    )
    return ServiceSpec(
        name="ledger",
        migrations_dir=Path(__file__).parent / "migrations",
        build=process.registrations,
        background_jobs=process.jobs,
        verifier=process.verifier,
    )


if __name__ == "__main__":
    try:
        ledger_spec = spec(Env(), serving=sys.argv[1:2] != ["migrate"])
    except ConfigError as err:
        print(f"ledger: configuration error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(ledger_spec))
