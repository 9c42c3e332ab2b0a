from collections.abc import Mapping
from pathlib import Path

import pytest

from devstack.secrets import DEV_SECRETS
from devstack.topology import (
    PORT_MAX,
    PORT_OFFSET_MAX,
    SERVICE_NAMES,
    Backends,
    gateway_env,
    ports_for,
    service_env,
)

SERVER_URL = "postgresql://wallet:pw@127.0.0.1:5432/postgres?host=/tmp/socket"
BACKENDS = Backends(postgres_server_url=SERVER_URL, redis_url="redis://127.0.0.1:6390/0")
# The developer's shell: a server URL and stale ports that must not reach the children as they are.
SHELL: Mapping[str, str] = {
    "PATH": "/usr/bin",
    "DATABASE_URL": SERVER_URL,
    "GRPC_PORT": "1",
    "METRICS_PORT": "2",
    "LOG_LEVEL": "DEBUG",
}


def test_offset_zero_is_the_readme_port_table() -> None:
    ports = ports_for(0)
    assert (ports.gateway_grpc, ports.gateway_http) == (50050, 8080)
    assert dict(ports.grpc) == {"auth": 50051, "ledger": 50052, "contacts": 50053, "risk": 50054}
    assert dict(ports.metrics) == {"auth": 51051, "ledger": 51052, "contacts": 51053, "risk": 51054}
    assert ports.grpc_address("ledger") == "127.0.0.1:50052"
    assert ports.gateway_url() == "http://127.0.0.1:8080"


@pytest.mark.parametrize("offset", [0, 1, 100, 7_000, PORT_OFFSET_MAX])
def test_an_offset_shifts_every_port_and_metrics_stay_grpc_plus_1000(offset: int) -> None:
    base, ports = ports_for(0), ports_for(offset)
    assert ports.gateway_http == base.gateway_http + offset
    assert ports.gateway_grpc == base.gateway_grpc + offset
    for name in SERVICE_NAMES:
        assert ports.grpc[name] == base.grpc[name] + offset
        assert ports.metrics[name] == ports.grpc[name] + 1000
    listed = [port for port, _ in ports.described()]
    assert len(listed) == len(set(listed)) == 2 + 2 * len(SERVICE_NAMES)
    assert all(0 < port <= PORT_MAX for port in listed)


def test_the_largest_offset_uses_the_last_port_exactly() -> None:
    assert max(port for port, _ in ports_for(PORT_OFFSET_MAX).described()) == PORT_MAX
    with pytest.raises(ValueError, match="port offset must be between 0 and"):
        ports_for(PORT_OFFSET_MAX + 1)
    with pytest.raises(ValueError, match="port offset must be between 0 and"):
        ports_for(-1)


def test_described_names_what_binds_each_port() -> None:
    described = dict((owner, port) for port, owner in ports_for(10).described())
    assert described["gateway HTTP"] == 8090
    assert described["gateway gRPC"] == 50060
    assert described["contacts gRPC"] == 50063
    assert described["contacts metrics"] == 51063


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_service_env_points_each_service_at_its_own_database_and_ports(tmp_path: Path, name: str) -> None:
    ports = ports_for(100)
    env = service_env(name, base=SHELL, ports=ports, backends=BACKENDS, run_dir=tmp_path)
    assert env["DATABASE_URL"] == f"postgresql://wallet:pw@127.0.0.1:5432/wallet_{name}?host=/tmp/socket"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert env["GRPC_HOST"] == "127.0.0.1"
    assert env["GRPC_PORT"] == str(ports.grpc[name])
    assert env["METRICS_PORT"] == str(ports.grpc[name] + 1000)
    assert env["OTEL_TRACES_FILE"] == str(tmp_path / "traces" / f"{name}.jsonl")
    assert env["WALLET_RUN_DIR"] == str(tmp_path)
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["PATH"] == "/usr/bin"
    assert env["PYTHONUNBUFFERED"] == "1"
    for peer in SERVICE_NAMES:
        assert env[f"{peer.upper()}_ADDR"] == f"127.0.0.1:{ports.grpc[peer]}"


def test_no_two_services_share_a_database(tmp_path: Path) -> None:
    ports = ports_for(0)
    urls = [
        service_env(name, base=SHELL, ports=ports, backends=BACKENDS, run_dir=tmp_path)["DATABASE_URL"]
        for name in SERVICE_NAMES
    ]
    assert len(set(urls)) == len(SERVICE_NAMES)
    assert SERVER_URL not in urls


def test_service_env_hands_out_only_that_services_secrets(tmp_path: Path) -> None:
    ports = ports_for(0)
    for name in SERVICE_NAMES:
        env = service_env(name, base={}, ports=ports, backends=BACKENDS, run_dir=tmp_path)
        given = {key.removesuffix("_FILE") for key in env if key.removesuffix("_FILE") in DEV_SECRETS}
        assert given == {secret for secret, owner in DEV_SECRETS.items() if owner == name}
        for secret in given:
            assert Path(env[f"{secret}_FILE"]).parent == tmp_path / "secrets"


def test_log_level_defaults_to_info(tmp_path: Path) -> None:
    env = service_env("auth", base={}, ports=ports_for(0), backends=BACKENDS, run_dir=tmp_path)
    assert env["LOG_LEVEL"] == "INFO"
    assert gateway_env(base={}, ports=ports_for(0), backends=BACKENDS, run_dir=tmp_path)["LOG_LEVEL"] == "INFO"


def test_gateway_env_never_carries_a_database_url(tmp_path: Path) -> None:
    ports = ports_for(3)
    env = gateway_env(base=SHELL, ports=ports, backends=BACKENDS, run_dir=tmp_path)
    assert "DATABASE_URL" not in env
    assert not any(SERVER_URL in value or "wallet:pw@" in value for value in env.values())
    assert env["GATEWAY_HTTP_PORT"] == "8083"
    assert env["GATEWAY_GRPC_PORT"] == "50053"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert env["OTEL_TRACES_FILE"] == str(tmp_path / "traces" / "gateway.jsonl")
    for peer in SERVICE_NAMES:
        assert env[f"{peer.upper()}_ADDR"] == ports.grpc_address(peer)
    # The gateway holds its own rate-limit key and no service's secrets.
    held = {key.removesuffix("_FILE") for key in env if key.removesuffix("_FILE") in DEV_SECRETS}
    assert held == {"GATEWAY_RATE_LIMIT_KEY"}
    assert (tmp_path / "secrets" / "gateway_rate_limit_key").exists()


def test_the_base_environment_is_not_modified(tmp_path: Path) -> None:
    base = dict(SHELL)
    service_env("ledger", base=base, ports=ports_for(0), backends=BACKENDS, run_dir=tmp_path)
    gateway_env(base=base, ports=ports_for(0), backends=BACKENDS, run_dir=tmp_path)
    assert base == SHELL
