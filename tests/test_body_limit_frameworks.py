"""BodyLimitMiddleware in front of frameworks: a drop-in for Starlette's
``RequestBodyLimitMiddleware``, and its total-bytes limit beside a framework's own in-memory
form limit (trap 43, shown with Quart's ``MAX_FORM_MEMORY_SIZE``)."""

from __future__ import annotations

import httpx
import pytest
from quart import Quart
from quart import request as quart_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares._types import ASGIApp
from middlewares.body_limit import MAX_BODY_SIZE_SCOPE_KEY, BodyLimitMiddleware

pytestmark = pytest.mark.anyio

HANDLED: list[str] = []


async def upload(request: Request) -> PlainTextResponse:
    HANDLED.append(request.url.path)
    body = await request.body()
    return PlainTextResponse(f"{len(body)} limit={request.scope[MAX_BODY_SIZE_SCOPE_KEY]}")


starlette_app = Starlette(
    routes=[Route("/upload", upload, methods=["POST"])],
    middleware=[Middleware(BodyLimitMiddleware, max_body_size=256 * 1024)],
)

quart_app = Quart(__name__)
quart_app.config["MAX_FORM_MEMORY_SIZE"] = 1024  # Quart's knob: one non-file field in memory


@quart_app.post("/upload")
async def quart_upload() -> str:
    form = await quart_request.form
    files = await quart_request.files
    return f"fields={sorted(form)} files={sorted(files)}"


async def post(app: ASGIApp, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/upload", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Quart runs on asyncio only


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        pytest.param(
            {"files": {"file": ("a.bin", b"x" * 200 * 1024)}},
            200,
            id="a 200 KiB file passes: under the body limit, and files are not held in memory",
        ),
        pytest.param(
            {"data": {"note": "x" * 2048}, "files": {"empty": ("e.txt", b"")}},
            413,
            id="a 2 KiB text field fails Quart's in-memory limit, not the body limit",
        ),
        pytest.param(
            {"files": {"file": ("a.bin", b"x" * 300 * 1024)}},
            413,
            id="a 300 KiB file fails the total body limit: file bytes count",
        ),
    ],
)
async def test_trap43_total_bytes_and_in_memory_field_bytes_are_separate_knobs(
    kwargs: dict[str, object], status: int
) -> None:
    response = await post(BodyLimitMiddleware(quart_app, 256 * 1024), **kwargs)
    assert response.status_code == status, response.text


async def test_trap43_only_the_total_limit_names_max_body_size() -> None:
    field = await post(
        BodyLimitMiddleware(quart_app, 256 * 1024),
        data={"note": "x" * 2048},
        files={"empty": ("e.txt", b"")},
    )
    upload = await post(
        BodyLimitMiddleware(quart_app, 256 * 1024),
        files={"file": ("a.bin", b"x" * 300 * 1024)},
    )
    assert "max_body_size" not in field.text
    assert upload.json()["max_body_size"] == 256 * 1024


async def test_starlette_middleware_list_switches_by_import() -> None:
    HANDLED.clear()
    small = await post(starlette_app, content=b"x" * 1000)
    assert small.text == f"1000 limit={256 * 1024}"
    response = await post(starlette_app, content=b"x" * (256 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["max_body_size"] == 256 * 1024
    assert response.headers["connection"] == "close"
    assert HANDLED == ["/upload"]  # the refused request never reached the route
