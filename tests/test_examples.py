"""Every example in examples/ imports and serves GET / with 200, as its docstring promises."""

from __future__ import annotations

import importlib
import pathlib

import httpx
import pytest

EXAMPLES = sorted(
    path.stem
    for path in (pathlib.Path(__file__).parent.parent / "examples").glob("*.py")
    if not path.stem.startswith("_")
)

pytestmark = pytest.mark.anyio

# Examples that expect a request as their reverse proxy forwards it.
HEADERS = {
    "proxies": {"x-forwarded-proto": "https"},
    "stack_bare": {"x-forwarded-proto": "https"},
}


@pytest.fixture
def anyio_backend() -> str:
    # Examples are served by uvicorn on asyncio, and Django and Quart run on asyncio only.
    return "asyncio"


def test_every_example_documents_how_to_run_it() -> None:
    assert EXAMPLES
    for name in EXAMPLES:
        module = importlib.import_module(f"examples.{name}")
        assert module.__doc__ is not None
        assert "examples." in module.__doc__ or "examples/" in module.__doc__, name


@pytest.mark.parametrize("name", EXAMPLES)
async def test_example_serves_its_front_page(name: str) -> None:
    module = importlib.import_module(f"examples.{name}")
    transport = httpx.ASGITransport(app=module.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        response = await client.get("/", headers=HEADERS.get(name))
    assert response.status_code == 200, response.text
