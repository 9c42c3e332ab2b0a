"""The whole stack (the real services behind the gateway), as the gateway's flows use it."""

from tests.integration.gateway.conftest import real_stack

__all__ = ["real_stack"]
