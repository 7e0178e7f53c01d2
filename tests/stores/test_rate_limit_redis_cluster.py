"""Trap 19: three policies charged in one script on a real three-node Redis Cluster, without
``CROSSSLOT``: every key of a request carries the same hash tag."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from middlewares import RateLimit, RateLimitMiddleware
from middlewares.stores import RedisRateLimitStore
from middlewares.testing import http_scope, run_asgi
from tests.servers import free_port, redis_server
from tests.test_rate_limit import ok_app

pytestmark = pytest.mark.anyio


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port < 55000 and port not in ports:
            with contextlib.suppress(OSError), socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
                ports.append(port)
    return ports


@pytest.fixture(scope="module")
def cluster_port() -> Iterator[int]:
    """Three cluster-enabled redis-servers joined into one cluster; yields one node's port."""
    ports = cluster_ports(3)
    with contextlib.ExitStack() as stack:
        for port in ports:
            stack.enter_context(
                redis_server(
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", port=port
                )
            )
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 20
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"], capture_output=True
            ).stdout
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster did not become ready")
            time.sleep(0.1)
        yield ports[0]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_trap19_three_policies_on_a_three_node_cluster_without_crossslot(
    cluster_port: int,
) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster_port)
    app = RateLimitMiddleware(
        ok_app,
        application_limits=[RateLimit("2/second", name="s"), RateLimit("1000/day", name="d")],
        route_limits={"/api/*": RateLimit("100/minute", name="m")},
        store=RedisRateLimitStore(client=client),
        store_timeout=5,
        fail_open=False,  # a CROSSSLOT error would show as 503
    )
    nodes = set()
    for n in range(8):
        client_address = f"198.51.100.{n}"
        statuses = [
            (await run_asgi(app, http_scope(path="/api/x", client=(client_address, 1)))).status
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429], client_address
        nodes.add(client.get_node_from_key(f"ratelimit:{{{client_address}}}:x").port)
    assert len(nodes) > 1  # the clients' keys really are spread over the nodes
    await client.aclose()
