"""The full-stack example for each framework shows every layer's work on one response, and lists
its layers in the order docs/ordering.md gives, so the page and the examples cannot drift."""

from __future__ import annotations

import contextlib
import gzip
import importlib
import json
import logging
import pathlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from quart import Quart
from starlette.applications import Starlette

from .logs import collected

pytestmark = pytest.mark.anyio

ROOT = pathlib.Path(__file__).parent.parent
FRAMEWORKS = ["bare", "starlette", "fastapi", "litestar", "quart", "django"]
PAGES = ["README.md", *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))]
APP_ORIGIN = "https://app.example.com"
# What the TLS-terminating proxy on 127.0.0.1 that every stack trusts adds to a request.
BEHIND_TLS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Django and Quart run on asyncio only


def documented_order() -> list[str]:
    """The layer names of the diagram on docs/ordering.md, outermost first."""
    text = (ROOT / "docs" / "ordering.md").read_text(encoding="utf-8")
    diagram = re.search(r"^```\n(request ─▶.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert diagram is not None, "docs/ordering.md has no request ─▶ diagram"
    return re.findall(r"^(?:request ─▶)?\s+([A-Z]\w+)\s", diagram.group(1), re.MULTILINE)


def documented_table() -> list[str]:
    """The first middleware named in each row of the table on docs/ordering.md."""
    text = (ROOT / "docs" / "ordering.md").read_text(encoding="utf-8")
    table = text.split("| layer | where | why |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| \[`(\w+)`\]", table, re.MULTILINE)


def layers(app: Any) -> list[str]:
    """The middleware class names around an example's app, outermost first."""
    names: list[str] = []
    while True:
        if isinstance(app, Starlette):  # and FastAPI
            return names + [entry.cls.__name__ for entry in app.user_middleware]
        if isinstance(app, Litestar):
            return names + [entry.middleware.__name__ for entry in app.middleware]
        if isinstance(app, Quart):
            app = app.asgi_app
            continue
        inner = getattr(app, "app", None)
        if inner is None:
            return names
        names.append(type(app).__name__)
        app = inner


def snippet_layers(snippet: str, order: list[str]) -> list[str]:
    """The layers a docs snippet wraps, outermost first: ``Middleware(X``, ``Layer(X`` and
    ``X(`` in the text, imports left out; ``add_middleware`` calls run innermost first."""
    code = re.sub(r"^(?:from|import) [^(\n]*(?:\([^)]*\))?", "", snippet, flags=re.MULTILINE)
    names = "|".join(order)
    found = re.findall(rf"(?:Middleware|Layer)\(\s*({names})\b|\b({names})\(", code)
    layers = [wrapped or called for wrapped, called in found]
    return layers[::-1] if "add_middleware" in code else layers


def load(framework: str) -> Any:
    return importlib.import_module(f"examples.stack_{framework}")


@contextlib.asynccontextmanager
async def client_for(module: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with contextlib.AsyncExitStack() as stack:
        if module.__name__.endswith("django"):
            from django.test.utils import override_settings

            # Django's settings are process-wide: another example may have configured them
            # first, so route this request through this example's URLs explicitly.
            stack.enter_context(override_settings(ROOT_URLCONF=module.__name__))
        yield await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=module.app), base_url="http://127.0.0.1:8000"
            )
        )


def test_the_ordering_table_has_one_row_per_diagram_line_in_the_same_order() -> None:
    assert documented_table() == documented_order()


def test_the_readme_and_the_docs_overview_share_one_table() -> None:
    def table(page: str) -> str:
        text = (ROOT / page).read_text(encoding="utf-8")
        return text.split("| middleware | replaces |", 1)[1].split("\n\n", 1)[0]

    assert table("README.md").replace("](docs/", "](") == table("docs/index.md")


def test_the_bare_stack_is_the_whole_documented_stack() -> None:
    assert layers(load("bare").app) == documented_order()


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_on_a_page_stacks_its_layers_in_the_documented_order(page: str) -> None:
    order = documented_order()
    text = (ROOT / page).read_text(encoding="utf-8")
    for snippet in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
        found = snippet_layers(snippet, order)
        assert found == sorted(found, key=order.index), (page, found)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_stack_lists_its_layers_in_the_documented_order(framework: str) -> None:
    order = documented_order()
    found = layers(load(framework).app)
    assert len(found) >= 7, found
    assert set(found) <= set(order), set(found) - set(order)
    assert found == sorted(found, key=order.index)


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_every_layer_shows_on_the_response(framework: str) -> None:
    async with client_for(load(framework)) as client:
        headers = {**BEHIND_TLS, "Origin": APP_ORIGIN, "Accept-Encoding": "gzip"}
        async with client.stream("GET", "/", headers=headers) as first:
            raw = b"".join([chunk async for chunk in first.aiter_raw()])
        # The session cookie is Secure (the proxy said https): send it back by hand.
        cookie = first.headers["set-cookie"].split(";", 1)[0]
        second = await client.get(
            "/", headers={**BEHIND_TLS, "Accept-Encoding": "identity", "Cookie": cookie}
        )

    assert first.status_code == 200
    assert first.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["visits"] == 1
    assert first.headers["access-control-allow-origin"] == APP_ORIGIN
    assert first.headers["access-control-allow-credentials"] == "true"
    vary = {token.strip().lower() for token in first.headers["vary"].split(",")}
    assert {"origin", "accept-encoding", "cookie"} <= vary
    assert len(first.headers.get_list("x-request-id")) == 1
    server_timing = first.headers["server-timing"]
    assert server_timing.startswith("app;dur=")
    assert "work;dur=" in server_timing
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["content-security-policy"].startswith("default-src 'none'")
    set_cookie = [part.strip().lower() for part in first.headers["set-cookie"].split(";")]
    assert set_cookie[0].startswith("session=")
    assert "secure" in set_cookie  # the proxy layer is outside the session layer
    # Never a stale length: rewritten for a one-shot body, absent for a streamed one (Quart).
    assert first.headers.get("content-length") in (None, str(len(raw)))

    assert second.json()["visits"] == 2
    assert "content-encoding" not in second.headers


# The production stack's layers in action: each refusal carries what the layers outside it add.


async def test_bare_stack_plain_http_is_redirected_with_security_headers_and_a_log_line() -> None:
    module = load("bare")
    with collected(logging.getLogger("middlewares.access")) as records:
        async with client_for(module) as client:
            response = await client.get("/?q=1", headers={"X-Forwarded-For": "203.0.113.7"})

    assert response.status_code == 307
    assert response.headers["location"] == "https://127.0.0.1:8000/?q=1"
    assert response.headers["x-content-type-options"] == "nosniff"
    (line,) = [json.loads(record.getMessage()) for record in records]
    assert line["status"] == 307
    assert line["client"] == "203.0.113.7"  # the proxy layer is outside the access log
    assert line["request_id"] == response.headers["x-request-id"]


async def test_bare_stack_unknown_host_is_refused_with_security_headers() -> None:
    async with client_for(load("bare")) as client:
        response = await client.get("/", headers={**BEHIND_TLS, "Host": "evil.example"})

    assert response.status_code == 400
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        pytest.param(
            {"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"},
            b"x" * (1024 * 1024 + 1),
            413,
            id="a body over the limit from the app's page",
        ),
        pytest.param(
            {"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"},
            b"{}",
            200,
            id="a post from the app's page",
        ),
    ],
)
async def test_bare_stack_answers_the_apps_page_with_cors_headers_it_can_read(
    headers: dict[str, str], content: bytes, status: int
) -> None:
    async with client_for(load("bare")) as client:
        response = await client.post("/", headers={**BEHIND_TLS, **headers}, content=content)

    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "ratelimit" in response.headers


async def test_bare_stack_refuses_a_cross_site_post_before_the_session_is_touched() -> None:
    headers = {**BEHIND_TLS, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    async with client_for(load("bare")) as client:
        response = await client.post("/", headers=headers, content=b"{}")

    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert "access-control-allow-origin" not in response.headers


async def test_bare_stack_runs_the_blocking_report_on_a_worker() -> None:
    async with client_for(load("bare")) as client:
        response = await client.get("/report", headers=BEHIND_TLS)

    assert response.status_code == 200
    assert response.json() == {"report": "ready"}
