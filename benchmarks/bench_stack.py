"""The full stack (timing, CORS, compression, sessions) against the same stack from the peers."""

from __future__ import annotations

from middlewares.testing import http_scope

from .e2e_apps import bare, ours_stack, peers_stack
from .harness import Case


def cases() -> list[Case]:
    variants = {"middlewares": ours_stack, "peers": peers_stack, "bare app": bare}
    return [
        Case("stack", "12-byte text, no Accept-Encoding", variants, baseline="peers"),
        Case(
            "stack",
            "4 KiB JSON, gzip level 6",
            variants,
            scope=http_scope(path="/json", headers={"accept-encoding": "gzip"}),
            baseline="peers",
        ),
    ]
