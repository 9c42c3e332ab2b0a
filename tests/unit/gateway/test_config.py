from pathlib import Path

import pytest

from gateway.config import load_gateway_config
from services.kit.config import ConfigError


def test_defaults() -> None:
    config = load_gateway_config({})
    assert (config.http_port, config.grpc_port, config.metrics_port) == (8080, 50050, 51050)
    assert config.upstreams == {
        "auth": "127.0.0.1:50051",
        "ledger": "127.0.0.1:50052",
        "contacts": "127.0.0.1:50053",
        "risk": "127.0.0.1:50054",
    }
    assert config.redis_url is None
    assert config.reject_unknown_fields is True
    assert config.cors_allowed_origins == ()
    assert config.rate_limit_key is None


def test_settings_from_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    config = load_gateway_config(
        {
            "GATEWAY_GRPC_PORT": "0",
            "LEDGER_ADDR": "ledger:50052",
            "REDIS_URL": "redis://cache:6379/0",
            "GATEWAY_CORS_ORIGINS": "https://a.example, https://b.example",
            "GATEWAY_REJECT_UNKNOWN_FIELDS": "false",
            "GATEWAY_RATE_LIMIT_KEY_FILE": str(key_file),
        }
    )
    assert config.metrics_port == 0
    assert config.upstreams["ledger"] == "ledger:50052"
    assert config.redis_url == "redis://cache:6379/0"
    assert config.cors_allowed_origins == ("https://a.example", "https://b.example")
    assert config.reject_unknown_fields is False
    assert config.rate_limit_key == "s3cret"


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEWAY_HTTP_PORT", "http"), ("REDIS_URL", "http://cache"), ("GATEWAY_MAX_BODY_BYTES", "0")],
)
def test_malformed_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_gateway_config({name: value})
