"""In-process benchmark harness: no server and no HTTP client in the loop, only ASGI calls.

A ``Case`` names one situation (a request and the response the inner app gives) and the
variants to compare on it: this library's middleware, the peers' equivalents, and a
pass-through floor. Variants are interleaved round by round so that machine noise hits them
alike; each round runs a batch of requests, and the median over rounds is reported as
µs/request, with the ratio to the case's baseline variant.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.testing import http_scope


@dataclass
class Case:
    """One benchmark situation and the apps that handle it.

    Args:
        group: The table the case belongs to (``"cors"``, ``"compression"``...).
        name: What the request is, in words.
        variants: Label to ASGI app; the first is this library's.
        scope: The request scope (copied for every call).
        body: The request body.
        baseline: The label ratios are computed against (the main peer); defaults to the last.
        check: Called once with each variant's recorded messages before timing, to prove the
            variants do the same work (for example that every compressor really compressed).
    """

    group: str
    name: str
    variants: dict[str, ASGIApp]
    scope: Scope = field(default_factory=http_scope)
    body: bytes = b""
    baseline: str | None = None
    check: Callable[[str, list[Message]], None] | None = None


@dataclass
class Row:
    group: str
    case: str
    variant: str
    us_per_request: float
    ratio: float | None


def _server_callables(
    body: bytes, sent: list[Message] | None, *, yield_per_message: bool = False
) -> tuple[Receive, Send]:
    """``receive``/``send`` as a server gives them: the body, then ``http.disconnect`` only once
    the response is complete (a bridge that watches for vanished clients relies on that). With
    ``yield_per_message``, ``send`` gives the loop a turn, as writing to a socket does."""
    request: Message = {"type": "http.request", "body": body, "more_body": False}
    finished = asyncio.Event()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            await finished.wait()
            return {"type": "http.disconnect"}
        delivered = True
        return request

    async def send(message: Message) -> None:
        if sent is not None:
            sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()
        if yield_per_message:
            await asyncio.sleep(0)

    return receive, send


def _driver(case: Case, app: ASGIApp) -> Callable[[], Awaitable[None]]:
    template = case.scope

    async def call_once() -> None:
        receive, send = _server_callables(case.body, None)
        scope = dict(template)
        scope["headers"] = list(template["headers"])
        await app(scope, receive, send)

    return call_once


async def _record(case: Case, app: ASGIApp) -> list[Message]:
    messages: list[Message] = []
    receive, send = _server_callables(case.body, messages)
    scope = dict(case.scope)
    scope["headers"] = list(case.scope["headers"])
    await app(scope, receive, send)
    return messages


async def _measure(case: Case, rounds: int, budget: float) -> list[Row]:
    drivers = {label: _driver(case, app) for label, app in case.variants.items()}
    for label, app in case.variants.items():
        messages = await _record(case, app)
        if case.check is not None:
            case.check(label, messages)
    # Size each batch so that one round of one variant takes about budget/rounds seconds.
    slowest = 0.0
    for call in drivers.values():
        start = time.perf_counter()
        for _ in range(3):
            await call()
        slowest = max(slowest, (time.perf_counter() - start) / 3)
    batch = max(1, int(budget / rounds / max(len(drivers), 1) / max(slowest, 1e-7)))
    samples: dict[str, list[float]] = {label: [] for label in drivers}
    for _ in range(rounds):
        for label, call in drivers.items():
            start = time.perf_counter()
            for _ in range(batch):
                await call()
            samples[label].append((time.perf_counter() - start) / batch * 1e6)
    medians = {label: statistics.median(values) for label, values in samples.items()}
    baseline = case.baseline or list(drivers)[-1]
    return [
        Row(
            case.group,
            case.name,
            label,
            value,
            None if label == baseline else value / medians[baseline],
        )
        for label, value in medians.items()
    ]


def run_cases(cases: Sequence[Case], *, rounds: int = 15, budget: float = 1.5) -> list[Row]:
    """Time every case; ``budget`` is roughly the seconds spent per case."""
    rows: list[Row] = []
    for case in cases:
        rows.extend(asyncio.run(_measure(case, rounds, budget)))
    return rows


def format_rows(rows: Sequence[Row]) -> str:
    """Render rows as Markdown tables, one per group."""
    out: list[str] = []
    group = None
    for row in rows:
        if row.group != group:
            group = row.group
            out += [
                "",
                f"### {group}",
                "",
                "| case | variant | µs/request | ratio |",
                "|---|---|---:|---:|",
            ]
        ratio = "baseline" if row.ratio is None else f"{row.ratio:.2f}x"
        out.append(f"| {row.case} | {row.variant} | {row.us_per_request:.2f} | {ratio} |")
    return "\n".join(out).lstrip("\n")


async def loop_stall(
    app: ASGIApp, scope: Scope, *, body: bytes = b"", probe: float = 0.001
) -> float:
    """Run one request through ``app`` while a probe task sleeps ``probe`` seconds in a loop;
    return the worst extra delay (ms) the probe saw: how long a concurrent tiny request waits."""
    done = asyncio.Event()
    worst = 0.0

    async def probe_loop() -> None:
        nonlocal worst
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(probe)
            worst = max(worst, time.perf_counter() - start - probe)

    async def run() -> None:
        receive, send = _server_callables(body, None, yield_per_message=True)
        try:
            await app(dict(scope), receive, send)
        finally:
            done.set()

    task = asyncio.ensure_future(probe_loop())
    await asyncio.sleep(probe * 3)
    await run()
    await task
    return worst * 1000


def respond_with(
    body: bytes, headers: Sequence[tuple[bytes, bytes]] = (), status: int = 200, chunks: int = 1
) -> ASGIApp:
    """An inner app that answers with ``body`` (split into ``chunks`` messages) and ``headers``."""
    raw = [(b"content-length", str(len(body)).encode())] if chunks == 1 else []
    raw.extend(headers)
    size = -(-len(body) // chunks) if body else 0
    parts = [body[i : i + size] for i in range(0, len(body), size)] if size else [b""]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # A new list per response, as apps build them: some middleware edit it in place.
        await send({"type": "http.response.start", "status": status, "headers": list(raw)})
        for index, part in enumerate(parts):
            await send(
                {"type": "http.response.body", "body": part, "more_body": index < len(parts) - 1}
            )

    return app


class PassThrough:
    """The cheapest useful pure-ASGI middleware: it wraps ``send`` and forwards every message.
    Its cost over the bare app is the floor any middleware pays."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_through(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, send_through)


def plot_rows(rows: Sequence[Row], path: str) -> None:
    """Draw one horizontal bar chart per group (µs/request, shorter is faster) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(row.group for row in rows))
    heights = [len([r for r in rows if r.group == g]) for g in groups]
    figure, axes = plt.subplots(
        len(groups),
        1,
        figsize=(9, 0.32 * sum(heights) + 1.2 * len(groups)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for axis, group in zip(axes[:, 0], groups, strict=True):
        selected = [r for r in rows if r.group == group][::-1]
        labels = [f"{r.case} · {r.variant}" for r in selected]
        colours = [
            "#2b6cb0" if r.variant.startswith("middlewares") else "#a0aec0" for r in selected
        ]
        axis.barh(labels, [r.us_per_request for r in selected], color=colours)
        axis.set_title(group, loc="left", fontsize=10, fontweight="bold")
        axis.tick_params(labelsize=8)
        axis.set_xlabel("µs/request (shorter is faster)", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
