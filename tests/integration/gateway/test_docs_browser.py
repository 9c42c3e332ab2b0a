"""The docs page in a real headless browser (Debian ``chromium``): it loads its packaged script, fetches
``/openapi.json`` from the gateway and lists every operation. Chromium runs the page's JavaScript and prints the
resulting DOM (``--dump-dom``), which the test reads."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile

import pytest

from gateway.catalog import public_methods
from tests.integration.gateway.conftest import Stack

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Virtual time the page may use before the DOM is dumped: its fetch and rendering finish far sooner.
VIRTUAL_TIME_BUDGET_MS = 10_000
BROWSER_TIMEOUT_S = 60.0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
async def test_docs_page_lists_every_operation(stack: Stack) -> None:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="gateway-docs-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            "--dump-dom",
            f"{stack.http_url}/docs",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=BROWSER_TIMEOUT_S)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    dom = stdout.decode()
    expected = sum(len(method.bindings) for method in public_methods())
    found = re.search(r'data-operation-count="(\d+)"', dom)
    assert found is not None, dom[:2000]
    assert int(found.group(1)) == expected
    assert 'data-operation-id="LedgerService_GetAccount"' in dom
    assert 'data-operation-id="LedgerService_CreateTransfer"' in dom
    assert "/v1/transfers/{transfer_id}:post" in dom
    assert "Reads one account with its current balances." in dom
    assert "Could not load" not in dom
