"""Run ASGI requests and blocking calls on bounded, named worker pools (ASGI 3 HTTP spec)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import multiprocessing
import os
import pickle
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from contextvars import copy_context
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import anyio.lowlevel

try:
    import sniffio
except ImportError:  # pragma: no cover - anyio made sniffio optional
    sniffio = None  # type: ignore[assignment]

from ._core.paths import PathMatcher, PathPattern
from ._core.respond import send_response
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CallLostError",
    "ClientDisconnected",
    "OffloadMiddleware",
    "Pool",
    "PoolFullError",
    "PoolStats",
    "dask_pool",
    "pool_full_handler",
    "process_pool",
    "run_in_process",
    "run_in_thread",
    "thread_pool",
]

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 10
DEFAULT_MAX_QUEUE = 100


class ClientDisconnected(OSError):
    """The client went away, or the server gave up on the request; raised in worker threads."""


class PoolFullError(RuntimeError):
    """Every worker of a pool is busy and its queue is full."""


_SERVICE_UNAVAILABLE = b"Service Unavailable"
_RETRY_AFTER = (b"retry-after", b"1")


async def pool_full_handler(request: Any, exc: Exception) -> Any:
    """Answer a `PoolFullError` from `run_in_thread` or `run_in_process` as `OffloadMiddleware`
    answers a full pool: ``503 Service Unavailable`` with ``Retry-After: 1``, instead of a 500.

    For Starlette and FastAPI, one line:
    ``app.add_exception_handler(PoolFullError, pool_full_handler)``. Starlette calls the
    returned object as an ASGI app, so no framework ``Response`` is needed here.
    """
    return _answer_pool_full


async def _answer_pool_full(scope: Scope, receive: Receive, send: Send) -> None:
    # RFC 9110 §15.6.4: 503 with Retry-After for a temporary overload.
    await send_response(send, 503, [_RETRY_AFTER], _SERVICE_UNAVAILABLE)


class CallLostError(BrokenExecutor):
    """A call's worker was lost (killed, out of memory), its Dask scheduler went away, or its
    executor was shut down before the call ran.

    It is a `concurrent.futures.BrokenExecutor`, like the ``BrokenProcessPool`` a local
    process pool raises when one of its processes dies, so one ``except`` handles both.
    """


def threadsafe_caller() -> Callable[..., None]:
    """Return ``call(fn, *args)`` that schedules ``fn(*args)`` on the running event loop from
    any thread, on asyncio or trio. Calls after the loop closed are dropped."""
    native: Any = anyio.lowlevel.current_token().native_token
    schedule: Callable[..., Any] = (
        native.call_soon_threadsafe
        if isinstance(native, asyncio.AbstractEventLoop)
        else native.run_sync_soon
    )

    def call_soon(fn: Callable[..., Any], *args: Any) -> None:
        # The loop may be closed already (trio's RunFinishedError is a RuntimeError too).
        with contextlib.suppress(RuntimeError):
            schedule(fn, *args)

    return call_soon


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool.

    Attributes:
        name: The pool's name.
        max_workers: Threads or processes.
        max_queue: Calls that may wait for a worker.
        running: Calls running now.
        queued: Calls waiting for a worker.
        abandoned: Calls still running whose caller stopped waiting (cancelled or timed out).
            A thread cannot be killed: these hold a worker until they return on their own.
    """

    name: str
    max_workers: int
    max_queue: int
    running: int
    queued: int
    abandoned: int


class Pool:
    """A named executor with a bounded queue: submitting beyond it raises `PoolFullError`.

    The pool runs calls on threads or processes of its own, or on any
    `concurrent.futures.Executor` you give it: a Dask cluster's executor (see `dask_pool`), a
    ``ThreadPoolExecutor`` shared with other code. Whatever runs the calls, the pool keeps the
    bound, the stats, the cancellation of queued calls and the count of abandoned ones.

    Args:
        name: The pool's name, shown in stats and thread names.
        max_workers: Threads (or processes) that run calls. With an ``executor``, the calls it
            can run at once: its capacity.
        max_queue: Calls that may wait for a free worker; more are refused.
        processes: Use processes instead of threads (for CPU-bound work). With an ``executor``,
            whether it runs calls in other processes: `run_in_process` needs such a pool.
        executor: Run calls on this executor instead of threads or processes of the pool's own.
        shutdown_executor: Whether `shutdown` also shuts ``executor`` down. Defaults to False:
            a supplied executor belongs to whoever made it.
        timeout: Seconds `run_in_thread` and `run_in_process` wait for a call's result before
            they abandon it and raise `TimeoutError`. None (the default) waits for ever.

    Raises:
        ValueError: a non-positive ``max_workers`` or ``timeout``, a negative ``max_queue``,
            ``shutdown_executor`` without an ``executor``, or a Dask executor made with
            ``pure=True``.
        TypeError: an ``executor`` that is not a `concurrent.futures.Executor`.
    """

    __slots__ = (
        "_abandoned",
        "_closed",
        "_executor",
        "_futures",
        "_lock",
        "_pending",
        "_running",
        "_shutdown_executor",
        "max_queue",
        "max_workers",
        "name",
        "processes",
        "timeout",
    )

    def __init__(
        self,
        name: str,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        processes: bool = False,
        executor: Executor | None = None,
        shutdown_executor: bool = False,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive integer, got {max_workers!r}")
        if not isinstance(max_queue, int) or max_queue < 0:
            raise ValueError(f"max_queue must be an integer >= 0, got {max_queue!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if executor is None and shutdown_executor:
            raise ValueError("shutdown_executor=True needs an executor to shut down")
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
        if executor is not None and _shares_identical_calls(executor):
            raise ValueError(
                "executor is a Dask executor made with pure=True (the default), which runs "
                "identical calls as one task, so cancelling one cancels the others: use "
                "client.get_executor(pure=False), or dask_pool()"
            )
        self.name = name
        self.max_workers = max_workers
        self.max_queue = max_queue
        self.processes = processes
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0
        self._closed = False
        self._abandoned: set[Future[Any]] = set()
        # A supplied executor is shared: shutdown cancels this pool's calls one by one.
        self._futures: set[Future[Any]] | None = None if executor is None else set()
        self._shutdown_executor = shutdown_executor
        if executor is not None:
            self._executor = executor
        elif processes:
            self._executor = ProcessPoolExecutor(
                max_workers, mp_context=multiprocessing.get_context("spawn")
            )
        else:
            self._executor = ThreadPoolExecutor(
                max_workers, thread_name_prefix=f"middlewares-{name}"
            )

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Submit ``fn(*args)``.

        Raises:
            PoolFullError: ``max_workers`` calls are running and ``max_queue`` are waiting.
            RuntimeError: the pool was shut down.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"pool {self.name!r} cannot take new calls after shutdown")
            if self._pending >= self.max_workers + self.max_queue:
                raise PoolFullError(
                    f"pool {self.name!r} is full: {self.max_workers} workers busy and "
                    f"{self.max_queue} calls queued"
                )
            self._pending += 1
        try:
            future = self._executor.submit(
                fn if self.processes else functools.partial(self._run, fn), *args
            )
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        if self._futures is not None:
            with self._lock:
                self._futures.add(future)
        future.add_done_callback(self._finished)
        return future

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._running += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1
            self._abandoned.discard(future)
            if self._futures is not None:
                self._futures.discard(future)

    def abandon(self, future: Future[Any]) -> None:
        """Stop waiting for ``future``: cancel it if it has not started, else count it."""
        if future.cancel():
            return
        with self._lock:
            if not future.done():
                self._abandoned.add(future)

    def stats(self) -> PoolStats:
        """Return a snapshot of the pool's load."""
        with self._lock:
            running = min(self._pending, self.max_workers) if self.processes else self._running
            return PoolStats(
                self.name,
                self.max_workers,
                self.max_queue,
                running,
                self._pending - running,
                len(self._abandoned),
            )

    def shutdown(self, *, wait: bool = True) -> None:
        """Refuse new calls and cancel queued ones; with ``wait``, join running ones.

        On a supplied executor, the pool cancels its own calls wherever the executor allows it
        (a ``ThreadPoolExecutor`` cancels queued calls; Dask cancels running ones too), and
        shuts the executor down only if made with ``shutdown_executor=True``.
        """
        with self._lock:
            self._closed = True
            futures = [] if self._futures is None else list(self._futures)
        if self._futures is None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            return
        for future in futures:
            future.cancel()
        if wait:
            concurrent.futures.wait(futures)
        if self._shutdown_executor:
            self._executor.shutdown(wait=wait)


def _shares_identical_calls(executor: Executor) -> bool:
    """Whether ``executor`` is a Dask ``ClientExecutor`` that keys tasks by their content."""
    # Only a Dask client makes one, so the module is already imported if it is one.
    module = sys.modules.get("distributed.cfexecutor")
    client_executor = getattr(module, "ClientExecutor", None)
    return (
        client_executor is not None
        and isinstance(executor, client_executor)
        and getattr(executor, "_kwargs", {}).get("pure", True) is not False
    )


def _lost_worker(exc: BaseException) -> bool:
    """Whether ``exc`` is Dask's report that every worker that ran the call died."""
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(exc, distributed.KilledWorker)


_pools: dict[tuple[str, bool], Pool] = {}
_pools_lock = threading.Lock()


def _named_pool(
    name: str,
    max_workers: int | None,
    max_queue: int | None,
    processes: bool,
    executor: Executor | None = None,
    timeout: float | None = None,
) -> Pool:
    with _pools_lock:
        pool = _pools.get((name, processes))
        if pool is None:
            pool = _pools[(name, processes)] = Pool(
                name,
                max_workers=(
                    ((os.cpu_count() or 1) if processes else DEFAULT_MAX_WORKERS)
                    if max_workers is None
                    else max_workers
                ),
                max_queue=DEFAULT_MAX_QUEUE if max_queue is None else max_queue,
                processes=processes,
                executor=executor,
                timeout=timeout,
            )
            return pool
    for arg, value, actual in (
        ("max_workers", max_workers, pool.max_workers),
        ("max_queue", max_queue, pool.max_queue),
        ("timeout", timeout, pool.timeout),
    ):
        if value is not None and value != actual:
            raise ValueError(f"pool {name!r} already exists with {arg}={actual}, got {value!r}")
    if executor is not None and executor is not pool._executor:
        raise ValueError(f"pool {name!r} already exists with another executor")
    return pool


def thread_pool(
    name: str,
    *,
    max_workers: int | None = None,
    max_queue: int | None = None,
    executor: Executor | None = None,
    timeout: float | None = None,
) -> Pool:
    """Return the thread pool called ``name``, creating it on first use.

    Args:
        name: The pool's name (``"db"``, ``"files"``...).
        max_workers: Threads; only when creating. Defaults to 10.
        max_queue: Calls waiting for a thread before `PoolFullError`. Defaults to 100.
        executor: Run the calls on this executor (its lifetime stays yours); only when creating.
        timeout: Seconds to wait for a result before `TimeoutError`; only when creating.
            Defaults to None: no limit.

    Raises:
        ValueError: the pool exists with other sizes, timeout or executor.
    """
    return _named_pool(name, max_workers, max_queue, False, executor, timeout)


def process_pool(
    name: str,
    *,
    max_workers: int | None = None,
    max_queue: int | None = None,
    executor: Executor | None = None,
    timeout: float | None = None,
) -> Pool:
    """Return the process pool called ``name`` (started with ``spawn``), creating it on first use.

    Args:
        name: The pool's name.
        max_workers: Processes; only when creating. Defaults to the CPU count.
        max_queue: Calls waiting for a process before `PoolFullError`. Defaults to 100.
        executor: Run the calls on this executor, which must run them in other processes (its
            lifetime stays yours); only when creating.
        timeout: Seconds to wait for a result before `TimeoutError`; only when creating.
            Defaults to None: no limit.

    Raises:
        ValueError: the pool exists with other sizes, timeout or executor.
    """
    return _named_pool(name, max_workers, max_queue, True, executor, timeout)


class DaskClient(Protocol):
    """What `dask_pool` uses of a ``distributed.Client``."""

    def get_executor(self, **kwargs: Any) -> Executor: ...

    def nthreads(self) -> dict[str, int]: ...


def dask_pool(
    name: str,
    client: DaskClient,
    *,
    max_workers: int | None = None,
    max_queue: int | None = None,
    timeout: float | None = 60.0,
) -> Pool:
    """Create the process pool called ``name``, running its calls on a Dask cluster.

    Calls go through ``client.get_executor(pure=False)``: each call is a task of its own, so
    identical calls never share a result and cancelling one never cancels another. The pool is
    registered under ``name`` like `process_pool`'s, so ``run_in_process(fn, pool=name)``
    finds it. Shutting the pool down cancels its calls but leaves the client open.

    Args:
        name: The pool's name.
        client: A connected ``distributed.Client``. Its lifetime stays yours.
        max_workers: Calls running at once. Defaults to the cluster's worker threads now.
        max_queue: Calls waiting for a worker before `PoolFullError`. Defaults to 100.
        timeout: Seconds to wait for a result before `TimeoutError`: the time box for a
            cluster that stops answering. Defaults to 60; None waits for ever.

    Raises:
        ValueError: a pool called ``name`` exists and is not shut down, or the cluster has no
            workers and ``max_workers`` is not given.
    """
    if max_workers is None:
        max_workers = sum(client.nthreads().values())
        if max_workers < 1:
            raise ValueError(
                "the Dask cluster has no workers yet: pass max_workers, or call "
                "client.wait_for_workers() first"
            )
    pool = Pool(
        name,
        max_workers=max_workers,
        max_queue=DEFAULT_MAX_QUEUE if max_queue is None else max_queue,
        processes=True,
        executor=client.get_executor(pure=False),
        timeout=timeout,
    )
    with _pools_lock:
        existing = _pools.get((name, True))
        if existing is not None and not existing._closed:
            raise ValueError(f"pool {name!r} already exists; shut it down first")
        _pools[(name, True)] = pool
    return pool


async def _wait(pool: Pool, future: Future[T]) -> T:
    if not future.done():
        done = anyio.Event()
        call_soon = threadsafe_caller()
        future.add_done_callback(lambda _: call_soon(done.set))
        try:
            with anyio.fail_after(pool.timeout):
                await done.wait()
        except BaseException as exc:
            pool.abandon(future)  # a thread cannot be killed: it runs on, and is counted
            if isinstance(exc, TimeoutError):
                raise TimeoutError(
                    f"pool {pool.name!r} gave no result within {pool.timeout} s; "
                    "the call was abandoned"
                ) from None
            raise
    if future.cancelled():
        raise CallLostError(
            f"pool {pool.name!r} lost the call: its executor cancelled it (it was shut down, "
            "or its Dask scheduler went away)"
        )
    try:
        return future.result()
    except Exception as exc:
        if _lost_worker(exc):
            raise CallLostError(f"pool {pool.name!r} lost the call: {exc}") from exc
        raise


async def run_in_thread(
    fn: Callable[..., T], /, *args: Any, pool: str | Pool = "default", **kwargs: Any
) -> T:
    """Call the blocking ``fn(*args, **kwargs)`` on a thread of a named, bounded pool.

    Context variables are copied into the thread; changes made there stay there. If the
    awaiting task is cancelled, a call that has not started is dropped; a running one cannot be
    stopped: it runs to the end, its result is discarded, and the pool counts it as
    ``abandoned`` until it returns.

    Args:
        fn: The function.
        *args: Its positional arguments.
        pool: A pool name for `thread_pool`, or a `Pool`. Defaults to ``"default"``.
        **kwargs: Its keyword arguments.

    Raises:
        TypeError: ``pool`` runs processes: the context cannot be pickled.
        PoolFullError: the pool's workers are busy and its queue is full.
    """
    target = thread_pool(pool) if isinstance(pool, str) else pool
    if target.processes:
        raise TypeError(f"run_in_thread needs a thread pool, {target.name!r} runs processes")
    call = functools.partial(fn, *args, **kwargs)
    return await _wait(target, target.submit(copy_context().run, call))


async def run_in_process(
    fn: Callable[..., T], /, *args: Any, pool: str | Pool = "cpu", **kwargs: Any
) -> T:
    """Call the CPU-bound ``fn(*args, **kwargs)`` in a process of a named, bounded pool.

    The function and arguments are pickled first, so an unpicklable one (a lambda, a local
    function, an open file) fails here with `TypeError` instead of inside the pool. Context
    variables do not cross. Cancelling the awaiting task drops a call that has not started; a
    running one finishes in its process and is counted as ``abandoned``.

    Args:
        fn: A module-level function.
        *args: Its positional arguments.
        pool: A pool name for `process_pool`, or a `Pool` made with ``processes=True``.
            Defaults to ``"cpu"``.
        **kwargs: Its keyword arguments.

    Raises:
        TypeError: ``fn`` or an argument cannot be pickled.
        PoolFullError: the pool's workers are busy and its queue is full.
    """
    try:
        pickle.dumps((fn, args, kwargs))
    except Exception as exc:
        raise TypeError(
            f"run_in_process needs a picklable function and arguments, {fn!r} with "
            f"{len(args)} args and {sorted(kwargs)} kwargs failed: {exc}"
        ) from exc
    target = process_pool(pool) if isinstance(pool, str) else pool
    if not target.processes:
        raise TypeError(f"run_in_process needs a process pool, {target.name!r} runs threads")
    return await _wait(target, target.submit(functools.partial(fn, *args, **kwargs)))


class OffloadMiddleware:
    """Run each HTTP request of an ASGI app on a worker thread that owns its own event loop.

    A handler that blocks (``time.sleep``, a sync database driver) stalls only its worker;
    the server's loop keeps serving. ``receive`` and ``send`` are bridged across threads: each
    ``send`` returns once the server has taken the message, so a slow client slows the
    handler instead of filling memory. The worker runs one request at a time on a fresh
    asyncio loop, in a copy of the caller's context variables. When every worker is busy and
    ``max_queue`` requests wait, the request is answered ``503`` with ``Retry-After`` at once.
    With ``timeout``, a response not started in time is answered ``504``; the handler is
    cancelled at its next ``await`` and, if it is blocked, keeps its worker until it returns
    (counted as ``abandoned`` in `Pool.stats`). WebSocket and lifespan scopes, and paths not
    offloaded, run on the server's loop untouched.

    Args:
        app: The ASGI application to wrap.
        pool: A pool name for `thread_pool`, or a `Pool`. Defaults to ``"offload"``.
        paths: Offload only these paths (`PathMatcher` patterns); all when None.
        exclude_paths: Never offload these paths.
        max_workers: Threads when the named pool is created. Defaults to 10.
        max_queue: Requests waiting for a thread before 503s, when the pool is created.
            Defaults to 100.
        timeout: Seconds to wait for the response to start before answering 504; None waits.
        retry_after: Seconds sent in ``Retry-After`` with a 503. Defaults to 1.

    Raises:
        ValueError: a non-positive ``timeout``, a negative ``retry_after``, sizes given with a
            `Pool`, or a pool that exists with other sizes.
        TypeError: a `Pool` that runs processes.
    """

    __slots__ = ("_exclude", "_only", "_pool", "_retry_after", "_timeout", "app")

    def __init__(
        self,
        app: ASGIApp,
        *,
        pool: str | Pool = "offload",
        paths: Iterable[PathPattern] | None = None,
        exclude_paths: Iterable[PathPattern] = (),
        max_workers: int | None = None,
        max_queue: int | None = None,
        timeout: float | None = None,
        retry_after: int = 1,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(retry_after, int) or retry_after < 0:
            raise ValueError(f"retry_after must be an integer >= 0, got {retry_after!r}")
        if isinstance(pool, Pool):
            if max_workers is not None or max_queue is not None:
                raise ValueError("max_workers and max_queue size a named pool; got a Pool")
            if pool.processes:
                # A request's receive and send are bound to this process's event loop.
                raise TypeError(f"pool must run threads, {pool.name!r} runs processes")
            self._pool = pool
        else:
            self._pool = thread_pool(pool, max_workers=max_workers, max_queue=max_queue)
        self.app = app
        self._only = None if paths is None else PathMatcher(paths)
        self._exclude = PathMatcher(exclude_paths)
        self._timeout = timeout
        self._retry_after = str(retry_after).encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._offloads(scope):
            await self.app(scope, receive, send)
            return
        bridge = _Bridge(self.app, scope, threadsafe_caller())
        try:
            future = self._pool.submit(copy_context().run, bridge.run)
        except PoolFullError:
            # RFC 9110 §15.6.4: 503 with Retry-After for a temporary overload.
            await send_response(
                send, 503, [(b"retry-after", self._retry_after)], b"Service Unavailable"
            )
            return
        try:
            await bridge.serve(receive, send, self._timeout)
        finally:
            if bridge.abandon():
                self._pool.abandon(future)

    def _offloads(self, scope: Scope) -> bool:
        if self._only is not None and not self._only.matches(scope):
            return False
        return not (self._exclude and self._exclude.matches(scope))


_Reply = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class _Bridge:
    """One offloaded request: calls from the worker's loop served on the server's loop."""

    __slots__ = (
        "_app",
        "_call_soon",
        "_calls",
        "_cond",
        "_event",
        "_gone",
        "_scope",
        "_started",
        "_task",
    )

    def __init__(self, app: ASGIApp, scope: Scope, call_soon: Callable[..., None]) -> None:
        self._app = app
        self._scope = scope
        self._call_soon = call_soon
        self._cond = threading.Lock()
        self._calls: deque[tuple[str, Any, _Reply | None]] = deque()
        self._event: anyio.Event | None = None
        self._task: tuple[asyncio.AbstractEventLoop, asyncio.Task[None]] | None = None
        self._gone = False  # the server side stopped serving this request
        self._started = False  # http.response.start went out

    # --- the worker thread
    def run(self) -> None:
        if sniffio is not None:
            # The context was copied from the server's loop, which may be trio's: the worker
            # runs asyncio, and anyio must see that.
            sniffio.current_async_library_cvar.set(None)
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(self._call_app())
            with self._cond:
                self._task = (loop, task)
                if self._gone:
                    task.cancel()
            loop.run_until_complete(task)
        except BaseException as exc:
            self._post("done", exc, None)
        else:
            self._post("done", None, None)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _call_app(self) -> None:
        await self._app(self._scope, self._receive, self._send)

    async def _receive(self) -> Message:
        return await self._call("receive", None)  # type: ignore[no-any-return]

    async def _send(self, message: Message) -> None:
        await self._call("send", message)

    async def _call(self, kind: str, payload: Any) -> Any:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._post(kind, payload, (loop, reply))
        return await reply

    def _post(self, kind: str, payload: Any, reply: _Reply | None) -> None:
        with self._cond:
            if self._gone and reply is not None:
                _settle(reply, None, ClientDisconnected("the request was abandoned"))
                return
            self._calls.append((kind, payload, reply))
            event, self._event = self._event, None
        if event is not None:
            self._call_soon(event.set)

    # --- the server's loop
    async def serve(self, receive: Receive, send: Send, deadline: float | None) -> None:
        error: BaseException | None = None
        async with anyio.create_task_group() as tasks:
            if deadline is not None:
                tasks.start_soon(self._deadline, send, deadline, tasks.cancel_scope)
            while not tasks.cancel_scope.cancel_called:
                with self._cond:
                    calls = list(self._calls)
                    self._calls.clear()
                    event = None if calls else anyio.Event()
                    self._event = event
                if event is not None:
                    await event.wait()
                for kind, payload, reply in calls:
                    if reply is None:  # the worker finished
                        error = payload
                        tasks.cancel_scope.cancel()
                        break
                    tasks.start_soon(self._perform, kind, payload, reply, receive, send)
        if error is not None:
            raise error

    async def _perform(
        self, kind: str, payload: Any, reply: _Reply, receive: Receive, send: Send
    ) -> None:
        if self._gone:
            _settle(reply, None, ClientDisconnected("the request was abandoned"))
            return
        try:
            if kind == "receive":
                result = await receive()
            else:
                if payload["type"] == "http.response.start":
                    self._started = True
                await send(payload)
                result = None
        except Exception as exc:
            _settle(reply, None, exc)
        else:
            _settle(reply, result, None)

    async def _deadline(self, send: Send, seconds: float, scope: anyio.CancelScope) -> None:
        await anyio.sleep(seconds)
        if self._started:
            return
        self.abandon()
        # RFC 9110 §15.6.5: the handler did not start a response in time.
        await send_response(send, 504, body=b"Gateway Timeout")
        scope.cancel()

    def abandon(self) -> bool:
        """Stop serving the worker; cancel its task. Return whether it was still running."""
        with self._cond:
            self._gone = True
            running = not any(kind == "done" for kind, _, _ in self._calls) and (
                self._task is None or not self._task[1].done()
            )
            pending = [reply for _, _, reply in self._calls if reply is not None]
            self._calls.clear()
            task = self._task
        for reply in pending:
            _settle(reply, None, ClientDisconnected("the request was abandoned"))
        if task is not None and not task[1].done():
            with contextlib.suppress(RuntimeError):  # its loop already closed
                task[0].call_soon_threadsafe(task[1].cancel)
        return running


def _settle(reply: _Reply, result: Any, error: BaseException | None) -> None:
    loop, future = reply

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the worker's loop already closed
        loop.call_soon_threadsafe(settle)
