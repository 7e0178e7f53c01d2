"""The shared per-loop timer behind TimeoutMiddleware on asyncio: it cancels exactly the scopes
whose deadline passed, re-arms for the earliest one left, and belongs to one loop."""

from __future__ import annotations

import asyncio

import anyio

from middlewares.timeout import _watch_for


def test_the_watch_cancels_only_expired_scopes_and_rearms_for_the_earliest_left() -> None:
    async def main() -> list[bool]:
        loop = asyncio.get_running_loop()
        watch = _watch_for(loop)
        scopes = [anyio.CancelScope() for _ in range(3)]
        now = loop.time()
        for scope, delay in zip(scopes, (0.01, 5, 6), strict=True):
            watch.set(scope, now + delay)
        await asyncio.sleep(0.05)
        cancelled = [scope.cancel_called for scope in scopes]
        assert watch._at == now + 5
        for scope in scopes:
            watch.discard(scope)
        return cancelled

    assert asyncio.run(main()) == [True, False, False]


def test_each_loop_has_its_own_watch() -> None:
    async def watch_of_running_loop() -> object:
        return _watch_for(asyncio.get_running_loop())

    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        watch = first.run_until_complete(watch_of_running_loop())
        assert second.run_until_complete(watch_of_running_loop()) is not watch
        assert first.run_until_complete(watch_of_running_loop()) is watch
    finally:
        first.close()
        second.close()
