"""``python -m gateway``: serve the gateway's HTTP side with uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from gateway.app import create_app
from services.kit.config import ConfigError, Env
from services.kit.logs import setup_logging

DEFAULT_HTTP_PORT = 8080


def main() -> int:
    env = Env()
    try:
        host = env.string("GATEWAY_HTTP_HOST", "127.0.0.1")
        port = env.port("GATEWAY_HTTP_PORT", DEFAULT_HTTP_PORT)
        setup_logging("gateway", env.string("LOG_LEVEL", "INFO"))
    except ConfigError as err:
        print(f"gateway: configuration error: {err}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(), host=host, port=port, log_config=None, access_log=False, loop="uvloop", lifespan="off"
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
