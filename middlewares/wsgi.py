"""Serve a WSGI application (PEP 3333) under ASGI 3 (ASGI HTTP and lifespan specs)."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextvars import copy_context
from types import TracebackType
from typing import IO, Any

import anyio

from ._core.respond import send_response
from ._types import Message, Receive, Scope, Send
from .offload import ClientDisconnected, threadsafe_caller

__all__ = ["ClientDisconnected", "FileWrapper", "WSGIMiddleware"]

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_DONE = object()
_SHUT_DOWN = object()


class WSGIMiddleware:
    """Run a PEP 3333 (WSGI) application, such as Flask or Django, under an ASGI server.

    Each request runs on a thread of a bounded pool while the event loop keeps serving. The
    request body is read on the event loop: a thread is only taken once the whole body, or its
    first ``prefetch_size`` bytes, have arrived, so a client that dribbles a small body holds
    no thread. After that the app reads the rest as it arrives, with at most ``prefetch_size``
    bytes buffered. The response streams back through a queue of ``send_queue_size`` messages:
    the app's thread waits while the client is slow, and when the client goes away the app's
    next ``write()`` raises `ClientDisconnected` (an ``OSError``) and its iterable is closed.
    A body cut short by a disconnect raises `ClientDisconnected` from ``wsgi.input``, never
    reads as a clean end of file. ``iterable.close()`` is always called. The lifespan scope is
    answered here (the WSGI app has none); on shutdown the pool is shut down when this
    middleware created it. A WebSocket handshake is rejected with close code 1000.

    Args:
        app: The WSGI application.
        workers: Threads in the pool created when ``executor`` is not given; a2wsgi's name and
            default. Defaults to 10.
        send_queue_size: Response messages buffered between the app's thread and the event
            loop before the thread waits; a2wsgi's name and default. Defaults to 10.
        prefetch_size: Request body bytes read on the event loop before a thread is taken, and
            the most buffered at once afterwards. Defaults to 1 MiB.
        executor: Run the app on this executor instead of a private pool; it is not shut down
            on lifespan shutdown.

    Raises:
        ValueError: a non-positive ``workers``, ``send_queue_size`` or ``prefetch_size``.
    """

    __slots__ = ("_executor", "_owns_executor", "_prefetch_size", "_send_queue_size", "app")

    def __init__(
        self,
        app: WSGIApp,
        *,
        workers: int = 10,
        send_queue_size: int = 10,
        prefetch_size: int = 1 << 20,
        executor: Executor | None = None,
    ) -> None:
        for name, value in (
            ("workers", workers),
            ("send_queue_size", send_queue_size),
            ("prefetch_size", prefetch_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.app = app
        self._send_queue_size = send_queue_size
        self._prefetch_size = prefetch_size
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="middlewares-wsgi"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._serve_http(scope, receive, send)
        elif kind == "lifespan":
            await self._serve_lifespan(receive, send)
        elif kind == "websocket":
            # ASGI WebSocket spec: a close before accept rejects the handshake.
            await receive()
            await send({"type": "websocket.close", "code": 1000})

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._owns_executor:
                    # Running requests finish on their own; nothing waits for them here.
                    self._executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        call_soon = threadsafe_caller()
        body = _RequestBody(self._prefetch_size, call_soon)
        outbox = _Outbox(self._send_queue_size, call_soon)
        environ = build_environ(scope, body)
        responder = _Responder(outbox, environ, self.app)
        error: BaseException | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_pump_request, receive, body, outbox)
            try:
                await body.ready.wait()
                if body.disconnected_early():
                    return  # the client left before a thread was taken: nothing to answer
                try:
                    future = self._executor.submit(copy_context().run, responder.run)
                except RuntimeError:  # the pool was shut down
                    await send_response(send, 503, body=b"Service Unavailable")
                    return
                future.add_done_callback(outbox.finish_if_cancelled)
                error = await _send_from_outbox(outbox, send)
            finally:
                # Whatever happened here, the app's thread must never wait for us again.
                body.fail(ClientDisconnected("the request was abandoned by the server"))
                outbox.close(ClientDisconnected("the response was abandoned by the server"))
                tasks.cancel_scope.cancel()
        if error is not None:
            raise error  # the app's own exception, for the server to log and answer 500


async def _pump_request(receive: Receive, body: _RequestBody, outbox: _Outbox) -> None:
    """Read the request body into ``body``, then watch for the client going away."""
    while not body.complete:
        message = await receive()
        if message["type"] == "http.request":
            await body.feed(message.get("body", b""), message.get("more_body", False))
        elif message["type"] == "http.disconnect":
            body.fail(ClientDisconnected("the client disconnected before sending the whole body"))
            outbox.close(ClientDisconnected("the client disconnected"))
            return
    # ASGI HTTP spec: once the body is complete, the next message is http.disconnect.
    if (await receive())["type"] == "http.disconnect":
        outbox.close(ClientDisconnected("the client disconnected"))


async def _send_from_outbox(outbox: _Outbox, send: Send) -> BaseException | None:
    """Send what the app's thread produces until it finishes; return the app's exception."""
    while True:
        messages = outbox.take()
        if not messages:
            await outbox.wait()
            continue
        for message in messages:
            if message is _DONE:
                return None
            if message is _SHUT_DOWN:  # queued when the pool was shut down
                await send_response(send, 503, body=b"Service Unavailable")
                return None
            if isinstance(message, BaseException):
                return message
            try:
                await send(message)
            except OSError as exc:  # the server could not deliver it: the client is gone
                outbox.close(ClientDisconnected(str(exc) or "the client disconnected"))
                return None
            except BaseException as exc:
                outbox.close(ClientDisconnected("the response could not be sent"))
                return exc


class _Outbox:
    """Response messages from the app's thread to the event loop, at most ``limit`` queued."""

    __slots__ = ("_call_soon", "_cond", "_error", "_event", "_limit", "_messages")

    def __init__(self, limit: int, call_soon: Callable[..., None]) -> None:
        self._limit = limit
        self._call_soon = call_soon
        self._cond = threading.Condition(threading.Lock())
        self._messages: deque[Any] = deque()
        self._event: anyio.Event | None = None
        self._error: BaseException | None = None

    # --- the app's thread
    def put(self, *messages: Any) -> None:
        """Queue messages; wait while the queue is full; raise once the client is gone."""
        with self._cond:
            while len(self._messages) >= self._limit and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            self._messages.extend(messages)
            self._wake()

    def finish(self, marker: Any) -> None:
        """Queue the final marker regardless of the limit; never waits."""
        with self._cond:
            self._messages.append(marker)
            self._wake()

    def finish_if_cancelled(self, future: Future[None]) -> None:
        if future.cancelled():  # the pool was shut down before the app started
            self.finish(_SHUT_DOWN)

    def _wake(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            self._call_soon(event.set)

    # --- the event loop
    def take(self) -> list[Any]:
        with self._cond:
            messages = list(self._messages)
            self._messages.clear()
            if messages:
                self._cond.notify()
            else:
                self._event = anyio.Event()
            return messages

    async def wait(self) -> None:
        event = self._event
        if event is not None:
            await event.wait()

    def close(self, error: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()
            self._wake()


class _RequestBody:
    """The request body between the event loop (writer) and ``wsgi.input`` (reader thread)."""

    __slots__ = (
        "_buffer",
        "_call_soon",
        "_cond",
        "_error",
        "_limit",
        "_space",
        "complete",
        "ready",
    )

    def __init__(self, limit: int, call_soon: Callable[..., None]) -> None:
        self._limit = limit
        self._call_soon = call_soon
        self._cond = threading.Condition(threading.Lock())
        self._buffer = bytearray()
        self._error: BaseException | None = None
        self._space: anyio.Event | None = None
        self.complete = False
        self.ready = anyio.Event()

    # --- the event loop
    async def feed(self, chunk: bytes, more: bool) -> None:
        space: anyio.Event | None = None
        with self._cond:
            self._buffer += chunk
            self.complete = not more
            self._cond.notify_all()
            if more and len(self._buffer) >= self._limit:
                space = self._space = anyio.Event()
        if space is None:
            if self.complete:
                self.ready.set()
            return
        self.ready.set()  # enough bytes to be worth a thread
        await space.wait()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if not self.complete and self._error is None:
                self._error = error
            self._cond.notify_all()
        self.ready.set()

    def disconnected_early(self) -> bool:
        return self._error is not None

    # --- the app's thread
    def read(self, size: int = -1) -> bytes:
        data = bytearray()
        with self._cond:
            while size < 0 or len(data) < size:
                if self._buffer:
                    n = len(self._buffer) if size < 0 else min(size - len(data), len(self._buffer))
                    data += self._buffer[:n]
                    del self._buffer[:n]
                    self._release_writer()
                elif self.complete:
                    break
                elif self._error is not None:
                    raise self._error  # a truncated body must never look like a clean EOF
                else:
                    self._cond.wait()
        return bytes(data)

    def readline(self, size: int = -1) -> bytes:
        data = bytearray()
        with self._cond:
            while size < 0 or len(data) < size:
                if self._buffer:
                    n = self._buffer.find(b"\n") + 1 or len(self._buffer)
                    if size >= 0:
                        n = min(n, size - len(data))
                    data += self._buffer[:n]
                    del self._buffer[:n]
                    self._release_writer()
                    if data.endswith(b"\n"):
                        break
                elif self.complete:
                    break
                elif self._error is not None:
                    raise self._error
                else:
                    self._cond.wait()
        return bytes(data)

    def _release_writer(self) -> None:
        if self._space is not None and len(self._buffer) < self._limit:
            space, self._space = self._space, None
            self._call_soon(space.set)


class _Input:
    """``wsgi.input``: a read-only binary stream over the request body (PEP 3333)."""

    __slots__ = ("_body",)

    def __init__(self, body: _RequestBody) -> None:
        self._body = body

    def read(self, size: int | None = -1) -> bytes:
        return self._body.read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._body.readline(-1 if size is None else size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333, optional platform-specific file handling).

    Args:
        filelike: A binary file-like object with ``read``; closed with the response.
        blksize: Bytes read per chunk. Defaults to 64 KiB.
    """

    __slots__ = ("_blksize", "filelike")

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self._blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.filelike.read(self._blksize):
            yield chunk

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _Responder:
    """Runs the WSGI app on a worker thread and turns its output into ASGI messages."""

    __slots__ = ("_app", "_environ", "_error", "_headers", "_outbox", "_sent_start", "_start")

    def __init__(self, outbox: _Outbox, environ: Environ, app: WSGIApp) -> None:
        self._outbox = outbox
        self._environ = environ
        self._app = app
        self._start: Message | None = None
        self._sent_start = False
        # The error the app reported through start_response's exc_info: raised to the server
        # once the response the app made of it was sent, as Starlette and a2wsgi do, so that
        # error trackers and logs see it.
        self._error: BaseException | None = None

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self._sent_start:
                    # PEP 3333: too late to change the status; re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
                self._error = exc_info[1]
            finally:
                exc_info = None  # PEP 3333: avoid a reference cycle through the traceback
        elif self._start is not None:
            raise RuntimeError("start_response() called a second time without exc_info")
        self._start = {
            "type": "http.response.start",
            "status": parse_status(status),
            "headers": encode_headers(headers),
        }
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: send ``data`` now; raises `ClientDisconnected` once gone."""
        if not isinstance(data, bytes):
            raise TypeError(f"WSGI response data must be bytes, got {type(data).__name__}")
        self._send_body(data, True)

    def _send_body(self, data: bytes, more: bool) -> None:
        message = {"type": "http.response.body", "body": data, "more_body": more}
        if self._sent_start:
            self._outbox.put(message)
            return
        if self._start is None:
            raise RuntimeError("the WSGI app produced a body before calling start_response()")
        self._sent_start = True
        self._outbox.put(self._start, message)

    def run(self) -> None:
        try:
            iterable = self._app(self._environ, self.start_response)
            try:
                if isinstance(iterable, (list, tuple)):
                    # Known length: the last chunk ends the body, saving a message.
                    last = len(iterable) - 1
                    for index, data in enumerate(iterable):
                        if data or index == last:
                            self._send_body(data, index < last)
                    if last < 0:
                        self._send_body(b"", False)
                else:
                    for data in iterable:
                        if data:  # PEP 3333: headers wait for the first non-empty chunk
                            self._send_body(data, True)
                    self._send_body(b"", False)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except ClientDisconnected:
            self._outbox.finish(_DONE)
        except BaseException as exc:
            self._outbox.finish(exc)
        else:
            self._outbox.finish(_DONE if self._error is None else self._error)


def parse_status(status: str) -> int:
    """Return the code of a PEP 3333 status line such as ``"200 OK"``."""
    code = status[:3]
    if len(status) < 3 or not code.isdigit() or (len(status) > 3 and status[3] != " "):
        raise ValueError(f"WSGI status must look like '200 OK', got {status!r}")
    return int(code)


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Encode PEP 3333 response headers (native strings, Latin-1) as raw ASGI pairs."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def build_environ(scope: Scope, body: _RequestBody) -> Environ:
    """Build the PEP 3333 environ for an ASGI HTTP scope.

    Strings are "bytes as Latin-1" (PEP 3333, unicode issues): the UTF-8 path ASGI decoded is
    re-encoded, then decoded as Latin-1, as every WSGI framework expects.
    """
    root = scope.get("root_path", "")
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    environ: Environ = {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path_info(scope).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": _Input(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # The body ends where the client's message ends (mod_wsgi's extension, honoured by
        # Werkzeug): the app may read to EOF without a Content-Length.
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "asgi.scope": scope,
    }
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    environ.update(environ_headers(scope.get("headers", ())))
    return environ


def path_info(scope: Scope) -> str:
    """The path below the mount point: empty when the request is for the mount point itself."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def environ_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Map request headers to ``HTTP_*`` keys (CGI, RFC 3875 §4.1.18).

    Repeated fields are joined with ``", "`` (RFC 9110 §5.3), cookies with ``"; "``
    (RFC 6265 §5.4). Names containing ``_`` are dropped: CGI turns ``-`` into ``_``, so
    ``X_Forwarded_For`` would otherwise pass for ``X-Forwarded-For`` (as nginx and gunicorn do).
    """
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = raw_value.decode("latin-1")
        if key in out:
            value = out[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        out[key] = value
    return out
