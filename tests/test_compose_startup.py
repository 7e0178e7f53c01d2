"""Where a bad middleware argument fails: at Layer() and compose(), before any request; with
Starlette's add_middleware, only once the stack is built (at lifespan startup with
``--lifespan on``, else on the first request, as a 500)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from middlewares import CompressionMiddleware, Layer, compose
from middlewares._types import Message

from .servers import serve


async def hello(scope: dict[str, object], receive: object, send: object) -> None:
    raise AssertionError("never reached")  # pragma: no cover


def test_a_misspelt_keyword_fails_at_layer() -> None:
    with pytest.raises(TypeError, match=r"Layer\(CompressionMiddleware, \.\.\.\): .*gzip_levl"):
        Layer(CompressionMiddleware, gzip_levl=9)


def test_a_missing_required_keyword_fails_at_layer() -> None:
    from middlewares import SessionMiddleware

    with pytest.raises(TypeError, match="secret_key"):
        Layer(SessionMiddleware)


def test_a_bad_value_fails_at_compose_before_any_request() -> None:
    with pytest.raises(ValueError, match="gzip_level must be an integer between 1 and 9"):
        compose(hello, Layer(CompressionMiddleware, gzip_level=99))  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_factory_without_a_signature_is_built_as_given() -> None:
    def factory(app: object) -> object:
        return app

    layer = Layer(factory)
    assert layer.cls is factory
    assert Layer(dict).cls is dict  # nothing to check against: built as given
    app = compose(hello, layer)  # type: ignore[arg-type]
    assert app is hello


def broken_starlette() -> Starlette:
    app = Starlette()
    app.add_middleware(CompressionMiddleware, gzip_level=99)
    return app


@pytest.mark.anyio
async def test_with_add_middleware_the_lifespan_call_raises_so_lifespan_on_stops_the_server() -> (
    None
):
    # What uvicorn --lifespan on does first: call the app with the lifespan scope.
    sent: list[Message] = []
    received = iter([{"type": "lifespan.startup"}])

    async def receive() -> Message:
        return next(received)

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(ValueError, match="gzip_level"):
        await broken_starlette()({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == []  # uvicorn --lifespan on reports the error and exits before serving


@pytest.mark.server
def test_with_add_middleware_and_uvicorns_default_lifespan_every_request_is_a_500() -> None:
    with serve(broken_starlette(), lifespan="auto", log_level="critical") as url:
        assert httpx.get(url + "/").status_code == 500
