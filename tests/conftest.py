from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from .servers import CHROMIUM, CHROMIUM_ARGS, serve

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def live_server() -> Callable[..., AbstractContextManager[str]]:
    """``with live_server(app) as url:`` serves ``app`` with uvicorn on 127.0.0.1."""
    return serve


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium from Debian's package, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Browser tests drive Playwright's sync API, whose event loop stays installed in the main
    # thread for the session: run them after every async test, sharing one Chromium.
    def uses_browser(item: pytest.Item) -> bool:
        names = getattr(item, "fixturenames", ())
        return "page" in names or "browser" in names

    for item in items:
        if uses_browser(item):
            item.add_marker(pytest.mark.browser)
    items.sort(key=uses_browser)
