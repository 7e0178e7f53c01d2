"""WSGIMiddleware under a real uvicorn on 127.0.0.1: Flask, Django, big bodies, disconnects."""

from __future__ import annotations

import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from middlewares.wsgi import ClientDisconnected, WSGIMiddleware

pytestmark = pytest.mark.server

Serve = Callable[..., AbstractContextManager[str]]
MiB = 1 << 20
CHUNK = b"x" * 65536


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def flask_app() -> Any:
    from flask import Flask, Response, redirect, request, stream_with_context

    app = Flask(__name__)

    @app.get("/")
    def index() -> Any:
        return {"path": request.path, "root": request.script_root, "args": request.args}

    @app.post("/form")
    def form() -> Any:
        return {"name": request.form["name"], "file": request.files["upload"].read().decode()}

    @app.get("/cookie")
    def cookie() -> Any:
        response = Response(f"a={request.cookies.get('a')} b={request.cookies.get('b')}")
        response.set_cookie("seen", "yes", httponly=True)
        return response

    @app.get("/stream")
    def stream() -> Any:
        def generate() -> Iterator[str]:
            for i in range(3):
                yield f"line {i}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.get("/old")
    def old() -> Any:
        return redirect("/")

    return app


def test_flask(live_server: Serve) -> None:
    with live_server(WSGIMiddleware(flask_app())) as url, httpx.Client(base_url=url) as client:
        assert client.get("/?q=caf%C3%A9").json() == {
            "path": "/",
            "root": "",
            "args": {"q": "café"},
        }
        response = client.post(
            "/form", data={"name": "Ada"}, files={"upload": ("a.txt", b"file body")}
        )
        assert response.json() == {"name": "Ada", "file": "file body"}
        response = client.get("/cookie", headers={"cookie": "a=1; b=2"})
        assert response.text == "a=1 b=2"
        assert response.cookies["seen"] == "yes"
        assert client.get("/stream").text == "line 0\nline 1\nline 2\n"
        response = client.get("/old")
        assert response.status_code == 302
        assert response.headers["location"] == "/"
        assert client.get("/missing").status_code == 404


def django_app() -> tuple[Any, threading.Event]:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
        )
    django.setup()
    from django.core.signals import request_finished
    from django.core.wsgi import get_wsgi_application

    finished = threading.Event()

    def on_finished(**kwargs: Any) -> None:
        finished.set()

    request_finished.connect(on_finished, weak=False)
    return get_wsgi_application(), finished


def django_view(request: Any) -> Any:
    from django.http import HttpResponse

    body = request.body.decode()
    return HttpResponse(
        f"{request.method} {request.path} {request.META['SCRIPT_NAME']!r} {body}",
        content_type="text/plain",
    )


def django_stream(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    return StreamingHttpResponse(iter([b"one ", b"two"]))


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("echo", django_view), path("stream", django_stream)]


def __getattr__(name: str) -> Any:
    # Django imports ROOT_URLCONF lazily; build the patterns only once Django is set up.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def test_django(live_server: Serve) -> None:
    from django.test.utils import override_settings

    application, finished = django_app()
    with (
        override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"]),
        live_server(WSGIMiddleware(application)) as url,
        httpx.Client(base_url=url) as client,
    ):
        response = client.post("/echo", content=b"payload")
        assert response.text == "POST /echo '' payload"
        # Django releases database connections from request_finished, sent by close().
        assert finished.wait(10)
        assert client.get("/stream").text == "one two"
        assert client.get("/nope").status_code == 404


def test_big_download_streams_in_bounded_memory(live_server: Serve) -> None:
    total = 100 * MiB

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", str(total))])
        for _ in range(total // len(CHUNK)):
            yield CHUNK

    received = 0
    with live_server(WSGIMiddleware(app)) as url, httpx.Client() as client:
        tracemalloc.start()
        try:
            with client.stream("GET", url) as response:
                for part in response.iter_raw(65536):
                    received += len(part)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert received == total
    assert peak < 32 * MiB


def test_big_upload_streams_in_bounded_memory(live_server: Serve) -> None:
    total = 100 * MiB
    counted: list[int] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        size = 0
        while part := environ["wsgi.input"].read(65536):
            size += len(part)
        counted.append(size)
        start_response("200 OK", [])
        return [str(size).encode()]

    def body() -> Iterator[bytes]:
        for _ in range(total // len(CHUNK)):
            yield CHUNK

    with live_server(WSGIMiddleware(app)) as url, httpx.Client(timeout=60) as client:
        tracemalloc.start()
        try:
            response = client.post(url, content=body(), headers={"content-length": str(total)})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert response.text == str(total)
    assert counted == [total]
    assert peak < 32 * MiB


def test_disconnect_mid_upload_raises_in_the_app_and_frees_the_thread(
    live_server: Serve,
) -> None:
    errors: list[BaseException] = []
    failed = threading.Event()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        try:
            while environ["wsgi.input"].read(65536):
                pass
        except OSError as exc:
            errors.append(exc)
            failed.set()
            raise
        start_response("200 OK", [])
        return [b"done"]

    middleware = WSGIMiddleware(app, workers=1, prefetch_size=256 * 1024)
    with live_server(middleware) as url:
        with connect(url) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n")
            sock.sendall(b"y" * 1_000_000)
        assert failed.wait(10)
        # The only worker is free again: a complete request is served.
        assert httpx.post(url, content=b"small", timeout=10).text == "done"
    assert isinstance(errors[0], ClientDisconnected)


def test_disconnect_mid_download_closes_the_iterable_and_frees_the_thread(
    live_server: Serve,
) -> None:
    closed = threading.Event()

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        if environ["PATH_INFO"] == "/small":
            start_response("200 OK", [])
            yield b"small"
            return
        start_response("200 OK", [])
        try:
            while True:  # endless: only the client going away stops it
                yield CHUNK
        finally:
            closed.set()

    with live_server(WSGIMiddleware(app, workers=1)) as url:
        with connect(url) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            received = 0
            while received < 2 * MiB:
                received += len(sock.recv(65536))
        assert closed.wait(10)
        assert httpx.get(url + "/small", timeout=10).text == "small"


def test_slow_upload_holds_no_thread(live_server: Serve) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"got %d" % len(body)]

    with live_server(WSGIMiddleware(app, workers=1)) as url, connect(url) as slow:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"z" * 10)
        # The slow client has not finished its body: the only worker must still be free.
        assert httpx.post(url, content=b"quick", timeout=10).text == "got 5"
        slow.sendall(b"z" * 90)
        reply = b""
        while b"got 100" not in reply:
            reply += slow.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200 ")
