"""Fixtures of the console tests: a desk (numbers, agents, tokens) and signed-in clients."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.after_hours.conftest import fixture_work  # noqa: F401 -- the `work` fixture
from tests.api.conftest import N1, N2, put_agent, put_number
from tests.conftest import ADMIN_TOKEN

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Desk:
    """Two numbers; `ana` (agent) and `mara` (manager) on N1, `bob` (agent) on N2."""

    tokens: dict[str, str]

    def token(self, who: str) -> str:
        return ADMIN_TOKEN if who == "admin" else self.tokens[who]


@pytest.fixture(name="desk")
async def fixture_desk(client: TestClient[Any, Any]) -> Desk:
    await put_number(client, N1)
    await put_number(client, N2)
    return Desk(
        {
            "ana": await put_agent(client, "ana", role="agent", numbers=[N1]),
            "mara": await put_agent(client, "mara", role="manager", numbers=[N1]),
            "bob": await put_agent(client, "bob", role="agent", numbers=[N2]),
        }
    )


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF field on the page"
    return match.group(1)


async def sign_in(client: TestClient[Any, Any], token: str) -> str:
    """Sign in with `token`; the session's CSRF token (read from the numbers page)."""
    resp = await client.post("/console/sign-in", data={"token": token}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await client.get("/console")
    assert page.status == 200, await page.text()
    return csrf_of(await page.text())


HTMX = {"HX-Request": "true"}

# --- the browser (tests/console/test_browser.py, test_screenshots.py) ---------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it:"
    " apt-get install chromium); Playwright never downloads a browser here",
)


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's), driven by Playwright for Python."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(name="console_url")
async def fixture_console_url(
    settings: Settings,
    clock: FixedClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> str:
    """The app served on a real localhost port (the same settings, clock and Redis as
    `client`): the browser's base URL."""
    server = await aiohttp_server(create_app(settings, clock=clock))
    return str(server.make_url("")).rstrip("/")
