"""schemathesis against the gateway's own ``/openapi.json``: generated requests for every operation, every response
checked against the document (status code documented, content type, body schema), and no 5xx except the
``501 NOT_IMPLEMENTED`` of RPCs the stand-ins do not serve.

The services behind the gateway are stand-ins here (see conftest), so most operations end in 501 or in a 4xx from
the gateway's own validation; the same test against the real services (zero 5xx at all) comes with the e2e flows.
Schemathesis is synchronous, so it runs in a worker thread while the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from schemathesis.generation.case import Case

from gateway.app import create_app
from gateway.config import load_gateway_config
from gateway.runtime import build_runtime
from tests.integration.gateway.conftest import HttpServer, Stack, gateway_environ

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 8
CASES_MIN = 500
NOT_BUILT_STATUS = 501


@pytest.fixture(scope="module")
async def fuzz_url(stack: Stack, redis_server_url: str) -> AsyncIterator[str]:
    """A gateway of its own with limits high enough for the fuzzer, in front of the same stand-ins."""
    environ = gateway_environ(
        f"127.0.0.1:{stack.upstream.port}",
        redis_server_url,
        GATEWAY_RATE_PER_IP_PER_S="100000",
        GATEWAY_BURST_PER_IP="100000",
        GATEWAY_RATE_PER_SUBJECT_PER_S="100000",
        GATEWAY_BURST_PER_SUBJECT="100000",
        GATEWAY_RATE_LIMIT_KEY=os.urandom(8).hex(),
    )
    runtime = build_runtime(load_gateway_config(environ))
    server = HttpServer(create_app(runtime))
    try:
        yield await server.start()
    finally:
        await server.stop()
        await runtime.close()


def _fuzz(base_url: str, token: str) -> Counter[int]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    statuses: Counter[int] = Counter()
    session = requests.Session()
    headers = {"authorization": f"Bearer {token}"}

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Case) -> None:
            response = case.call(base_url=base_url, session=session, headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(
                response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
            )
            if response.status_code >= 500:
                assert response.status_code == NOT_BUILT_STATUS, (case.method, case.path, response.text)
                assert response.json()["code"] == "NOT_IMPLEMENTED"

        exercise()
    session.close()
    return statuses


async def test_generated_requests_match_the_document(stack: Stack, fuzz_url: str) -> None:
    statuses = await asyncio.to_thread(_fuzz, fuzz_url, stack.token(roles=["owner"]))
    print(f"schemathesis statuses: {dict(statuses)}")
    assert sum(statuses.values()) >= CASES_MIN, statuses
    assert statuses[200] > 0, statuses
    assert all(status < 500 or status == NOT_BUILT_STATUS for status in statuses), statuses
