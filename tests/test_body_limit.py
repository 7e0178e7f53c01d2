"""BodyLimitMiddleware in-process: refusal before the app runs, streamed bodies cut at the
limit, per-path limits, the problem answer, Content-Length parsing and the traps of
limits.md §3 (35–45) that do not need a real server."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.outcome import get_outcome
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.body_limit import (
    MAX_BODY_SIZE_SCOPE_KEY,
    BodyLimitMiddleware,
    BodyTooLarge,
    declared_length,
)
from middlewares.compression import RequestDecompressionMiddleware
from middlewares.testing import http_scope, run_asgi

from .logs import collected

pytestmark = pytest.mark.anyio

CHUNK = 64 * 1024


def echo_app(seen: list[bytes] | None = None, calls: list[Scope] | None = None) -> ASGIApp:
    """Reads the whole body, then answers 200 with its length; records each piece."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if calls is not None:
            calls.append(scope)
        size = 0
        while True:
            message = await receive()
            data = message.get("body", b"")
            if seen is not None:
                seen.append(data)
            size += len(data)
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    return app


def counting_receive(chunks: list[bytes], pulled: list[int]) -> Receive:
    """A client sending ``chunks`` as separate messages; ``pulled`` counts those taken."""

    async def receive() -> Message:
        index = len(pulled)
        pulled.append(index)
        if index < len(chunks):
            return {
                "type": "http.request",
                "body": chunks[index],
                "more_body": index < len(chunks) - 1,
            }
        return {"type": "http.disconnect"}

    return receive


def post(path: str = "/", length: int | str | None = None, **headers: str) -> Scope:
    raw = dict(headers)
    if length is not None:
        raw["content-length"] = str(length)
    return http_scope("POST", path, headers=raw)


def problem(body: bytes) -> dict[str, Any]:
    return json.loads(body)  # type: ignore[no-any-return]


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        pytest.param({"max_body_size": -1}, "max_body_size must be", id="negative limit"),
        pytest.param({"max_body_size": 1.5}, "max_body_size must be", id="fractional limit"),
        pytest.param({"max_body_size": True}, "max_body_size must be", id="bool limit"),
        pytest.param(
            {"path_limits": {"/upload": -5}}, "path_limits['/upload']", id="negative path limit"
        ),
        pytest.param({"path_limits": {"upload": 5}}, "starting with '/'", id="bad pattern"),
        pytest.param({"body_timeout": 0}, "body_timeout must be", id="zero body timeout"),
        pytest.param({"body_timeout": "5"}, "body_timeout must be", id="string body timeout"),
        pytest.param(
            {"websocket_max_message_size": -1},
            "websocket_max_message_size",
            id="negative websocket message limit",
        ),
    ],
)
def test_bad_configuration_names_the_argument(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        BodyLimitMiddleware(echo_app(), **kwargs)


async def test_starlette_arguments_and_scope_key_switch_by_import() -> None:
    scopes: list[Scope] = []
    positional = BodyLimitMiddleware(echo_app(calls=scopes), 100)
    keyword = BodyLimitMiddleware(echo_app(calls=scopes), max_body_size=100)
    for middleware in (positional, keyword):
        assert (await run_asgi(middleware, post(length=10), body=b"x" * 10)).status == 200
        assert (await run_asgi(middleware, post(length=101), body=b"x" * 101)).status == 413
    assert [scope[MAX_BODY_SIZE_SCOPE_KEY] for scope in scopes] == [100, 100]


# --- Content-Length --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        pytest.param([], None, id="absent"),
        pytest.param([(b"content-length", b"42")], 42, id="plain"),
        pytest.param([(b"Content-Length", b"0")], 0, id="any case, zero"),
        pytest.param([(b"content-length", b"007")], 7, id="leading zeros"),
        pytest.param([(b"content-length", b"5, 5")], 5, id="identical list"),
        pytest.param([(b"content-length", b"5"), (b"content-length", b"5")], 5, id="same twice"),
        pytest.param([(b"content-length", b"9" * 50)], 10**18, id="fifty digits is huge"),
    ],
)
def test_declared_length_reads_rfc_9110_values(
    headers: list[tuple[bytes, bytes]], length: int | None
) -> None:
    assert declared_length(headers) == length


@given(st.lists(st.tuples(st.sampled_from([b"content-length", b"x"]), st.binary(max_size=40))))
def test_declared_length_never_raises_anything_but_value_error(
    headers: list[tuple[bytes, bytes]],
) -> None:
    try:
        length = declared_length(headers)
    except ValueError:
        return
    assert length is None or 0 <= length <= 10**18


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"abc", id="letters"),
        pytest.param(b"-5", id="negative"),
        pytest.param(b"+5", id="plus sign"),
        pytest.param(b"1e3", id="exponent"),
        pytest.param(b"", id="empty"),
        pytest.param(b"5, 6", id="list that differs"),
        pytest.param(b"\xd9\xa5", id="non-ascii digit"),
        pytest.param(b"5\r\nx-injected: 1", id="cr lf inside"),
    ],
)
async def test_hostile_content_length_gets_400_without_calling_the_app(value: bytes) -> None:
    calls: list[Scope] = []
    scope = http_scope("POST", headers=[(b"content-length", value)])
    recorded = await run_asgi(BodyLimitMiddleware(echo_app(calls=calls), 100), scope)
    assert recorded.status == 400
    assert recorded.header("connection") == "close"
    assert problem(recorded.body)["title"] == "Bad Request"
    assert calls == []


async def test_the_refusal_is_logged_with_the_client_value_escaped() -> None:
    logger = logging.getLogger("middlewares.body_limit")
    scope = http_scope("POST", headers=[(b"content-length", b"5\r\nx-forged: 1")])
    logger.setLevel(logging.DEBUG)
    try:
        with collected(logger) as records:
            await run_asgi(BodyLimitMiddleware(echo_app(), 100), scope)
    finally:
        logger.setLevel(logging.NOTSET)
    message = records[-1].getMessage()
    assert "\\r\\n" in message
    assert "\r" not in message


async def test_two_different_content_length_fields_get_400() -> None:
    scope = http_scope("POST", headers=[(b"content-length", b"5"), (b"content-length", b"6")])
    recorded = await run_asgi(BodyLimitMiddleware(echo_app(), 100), scope)
    assert recorded.status == 400


async def test_content_length_that_lies_low_is_still_counted() -> None:
    seen: list[bytes] = []
    scope = post(length=10)
    recorded = await run_asgi(
        BodyLimitMiddleware(echo_app(seen), 100), scope, body=[b"x" * 10, b"x" * 200]
    )
    assert recorded.status == 413
    assert sum(map(len, seen)) <= 100


# --- the traps -------------------------------------------------------------------------------


async def test_trap35_chunked_body_without_content_length_is_cut_after_limit_plus_one_chunk() -> (
    None
):
    chunks = [b"x" * CHUNK] * 160  # 10 MiB, no Content-Length
    pulled: list[int] = []
    seen: list[bytes] = []
    recorded = await run_asgi(
        BodyLimitMiddleware(echo_app(seen), 1024 * 1024),
        post(),
        receive=counting_receive(chunks, pulled),
    )
    assert recorded.status == 413
    assert sum(map(len, seen)) <= 1024 * 1024
    assert len(pulled) == 1024 * 1024 // CHUNK + 1  # the limit, then the one that crossed it


async def test_trap36_413_is_sent_as_soon_as_the_limit_is_crossed_not_after_the_upload() -> None:
    pulled: list[int] = []
    recorded = await run_asgi(
        BodyLimitMiddleware(echo_app(), 2500),
        post(),
        receive=counting_receive([b"x" * 1000] * 50, pulled),
    )
    assert recorded.status == 413
    assert len(pulled) == 3  # the third message crossed 2 500 bytes; nothing more was read


async def test_trap37_content_length_over_the_limit_never_invokes_the_handler() -> None:
    calls: list[Scope] = []
    pulled: list[int] = []
    recorded = await run_asgi(
        BodyLimitMiddleware(echo_app(calls=calls), 1000),
        post(length=1001),
        receive=counting_receive([b"x" * 1001], pulled),
    )
    assert recorded.status == 413
    assert calls == []
    assert pulled == []  # trap 38 too: no receive(), so a server never sends 100 Continue


async def test_trap39_decompression_bomb_stops_at_the_decoded_limit_when_placed_inside() -> None:
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))  # about 10 KB on the wire
    assert len(bomb) < 20 * 1024
    seen: list[bytes] = []
    app = RequestDecompressionMiddleware(BodyLimitMiddleware(echo_app(seen), 256 * 1024))
    scope = post(length=len(bomb), **{"content-encoding": "gzip"})
    recorded = await run_asgi(app, scope, body=bomb)
    assert recorded.status == 413
    assert problem(recorded.body)["max_body_size"] == 256 * 1024
    assert sum(map(len, seen)) <= 256 * 1024


async def test_trap39_placed_outside_the_limit_counts_wire_bytes() -> None:
    body = gzip.compress(b"\0" * (1024 * 1024))
    app = BodyLimitMiddleware(RequestDecompressionMiddleware(echo_app()), 64 * 1024)
    scope = post(length=len(body), **{"content-encoding": "gzip"})
    recorded = await run_asgi(app, scope, body=body)
    assert recorded.status == 200
    assert recorded.body == str(1024 * 1024).encode()


@pytest.mark.parametrize(
    ("path", "size", "limit"),
    [
        pytest.param("/upload", 4000, 5000, id="route limit above the app limit is reachable"),
        pytest.param("/upload", 5001, 5000, id="route limit above the app limit still holds"),
        pytest.param("/items/7/note", 200, 100, id="route template limit below the app limit"),
        pytest.param("/items/7/note", 100, 100, id="within the route template limit"),
        pytest.param("/other", 1001, 1000, id="other paths keep the app limit"),
        pytest.param("/stream/anything", 10**6, None, id="None lifts the limit"),
    ],
)
async def test_trap40_route_limits_above_and_below_the_app_limit_both_hold(
    path: str, size: int, limit: int | None
) -> None:
    middleware = BodyLimitMiddleware(
        echo_app(),
        1000,
        path_limits={"/upload": 5000, "/items/{id}/note": 100, "/stream/*": None},
    )
    for declared in (None, size):  # streamed, then announced in Content-Length
        recorded = await run_asgi(middleware, post(path, declared), body=[b"x" * size])
        if limit is None or size <= limit:
            assert recorded.status == 200
        else:
            assert recorded.status == 413
            assert problem(recorded.body)["max_body_size"] == limit


async def test_trap41_the_413_is_problem_json_naming_the_limit() -> None:
    recorded = await run_asgi(BodyLimitMiddleware(echo_app(), 1000), post(length=5000))
    assert recorded.status == 413
    assert recorded.header("content-type") == "application/problem+json"
    assert problem(recorded.body) == {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": "The request body is larger than the limit of 1000 bytes.",
        "max_body_size": 1000,
    }


async def test_trap42_a_layer_that_reads_the_body_first_never_reads_beyond_the_limit() -> None:
    buffered: list[bytes] = []

    class BufferingLogger:
        """A naive logging layer: reads the whole body before calling the app."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            more = True
            while more:
                message = await receive()
                buffered.append(message.get("body", b""))
                more = message.get("more_body", False)
            await self.app(scope, receive, send)

    app = BodyLimitMiddleware(BufferingLogger(echo_app()), 10_000)
    recorded = await run_asgi(app, post(), body=[b"x" * 4000] * 25)
    assert recorded.status == 413
    assert sum(map(len, buffered)) <= 10_000


async def test_trap44_limit_crossed_after_the_response_started_aborts_and_logs() -> None:
    async def streaming_echo(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})

    logger = logging.getLogger("middlewares.body_limit")
    scope = post()
    with collected(logger) as records:
        recorded = await run_asgi(
            BodyLimitMiddleware(streaming_echo, 1000),
            scope,
            body=[b"x" * 600] * 4,
            validate=False,
        )
    assert [m["type"] for m in recorded.messages] == [
        "http.response.start",
        "http.response.body",
    ]
    assert recorded.body_chunks == [b"x" * 600]  # no final chunk: the server closes
    assert recorded.status == 200  # never a second start
    assert any("413-after-start" in r.getMessage() for r in records)
    assert records[-1].levelno == logging.WARNING
    assert get_outcome(scope) == "too_large"


async def test_trap45_the_413_asks_the_server_to_close_the_connection() -> None:
    recorded = await run_asgi(BodyLimitMiddleware(echo_app(), 10), post(length=11))
    assert recorded.header("connection") == "close"


# --- how the app sees a refusal --------------------------------------------------------------


async def test_the_app_sees_a_clear_error_and_its_own_500_becomes_the_413() -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await echo_app()(scope, receive, send)
        except BodyTooLarge as error:
            errors.append(error)
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"Internal Server Error"})

    scope = post()
    recorded = await run_asgi(BodyLimitMiddleware(app, 10), scope, body=[b"x" * 8, b"x" * 8])
    assert recorded.status == 413
    assert [m["type"] for m in recorded.messages] == ["http.response.start", "http.response.body"]
    assert str(errors[0]) == "the request body is larger than max_body_size=10 bytes"
    assert get_outcome(scope) == "too_large"


async def test_every_later_receive_raises_the_same_error() -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in range(3):
            with pytest.raises(BodyTooLarge) as caught:
                await receive()
            raised.append(caught.value)

    recorded = await run_asgi(BodyLimitMiddleware(app, 1), post(), body=[b"xx"])
    assert recorded.status == 413
    assert len(raised) == 3
    assert raised[0] is raised[1] is raised[2]


async def test_other_exceptions_of_the_app_propagate() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await run_asgi(BodyLimitMiddleware(app, 1000), post(), body=b"x")


async def test_a_refusal_from_another_instance_is_not_swallowed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise BodyTooLarge(5)

    with pytest.raises(BodyTooLarge):
        await run_asgi(BodyLimitMiddleware(app, 1000), post(), body=b"x")


async def test_body_within_the_limit_reaches_the_app_byte_identical() -> None:
    seen: list[bytes] = []
    chunks = [bytes(range(256)) * 4, b"", b"tail"]
    recorded = await run_asgi(BodyLimitMiddleware(echo_app(seen), 1028), post(), body=chunks)
    assert recorded.status == 200
    assert seen == chunks


async def test_a_path_without_limit_gets_the_original_callables() -> None:
    seen: list[tuple[Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((receive, send))

    async def receive() -> Message:
        return {"type": "http.request", "body": b"x" * 10_000}

    async def send(message: Message) -> None:
        return None

    middleware = BodyLimitMiddleware(app, None, path_limits={"/small": 1})
    scope = post("/big")
    await middleware(scope, receive, send)
    assert seen == [(receive, send)]
    assert MAX_BODY_SIZE_SCOPE_KEY not in scope
    assert (await run_asgi(middleware, post("/small", length=2), body=b"xx")).status == 413


async def test_unknown_messages_pass_through_both_ways() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        await send({"type": "http.response.early_hint", "links": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["type"].encode()})

    async def receive() -> Message:
        return {"type": "http.future"}

    scope = http_scope("POST", extensions={"http.response.early_hint": {}})
    recorded = await run_asgi(BodyLimitMiddleware(app, 10), scope, receive=receive, validate=False)
    assert recorded.messages[0]["type"] == "http.response.early_hint"
    assert recorded.body == b"http.future"


@given(sizes=st.lists(st.integers(0, 300), max_size=12), limit=st.integers(0, 1500))
async def test_any_chunking_delivers_at_most_the_limit_and_413s_exactly_the_bodies_over_it(
    sizes: list[int], limit: int
) -> None:
    seen: list[bytes] = []
    chunks = [b"x" * size for size in sizes]
    recorded = await run_asgi(BodyLimitMiddleware(echo_app(seen), limit), post(), body=chunks)
    assert sum(map(len, seen)) <= limit
    assert recorded.status == (413 if sum(sizes) > limit else 200)
