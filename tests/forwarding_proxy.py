"""A tiny HTTP/1.1 reverse proxy for tests, run as its own process: it appends the peer's address
to ``X-Forwarded-For`` as nginx's ``$proxy_add_x_forwarded_for`` does, sets
``X-Forwarded-Proto`` as a TLS-terminating proxy would, and forwards one request per connection.

``python -m tests.forwarding_proxy LISTEN_PORT UPSTREAM_PORT PROTO LIFETIME``; it exits by
itself after LIFETIME seconds.
"""

from __future__ import annotations

import asyncio
import sys

_DROPPED = (b"x-forwarded-for:", b"x-forwarded-proto:", b"connection:")
_LIMIT = 64 * 1024


async def forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: int, proto: bytes
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        request_line, *lines = head[:-4].split(b"\r\n")
        incoming = [
            line.split(b":", 1)[1].strip() for line in lines if line.lower().startswith(_DROPPED[0])
        ]
        kept = [line for line in lines if not line.lower().startswith(_DROPPED)]
        peer = writer.get_extra_info("peername")[0].encode()
        # nginx: $proxy_add_x_forwarded_for is "$http_x_forwarded_for, $remote_addr".
        kept.append(b"X-Forwarded-For: " + b", ".join([*incoming, peer]))
        kept.append(b"X-Forwarded-Proto: " + proto)
        kept.append(b"Connection: close")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in lines
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        up_writer.write(b"\r\n".join([request_line, *kept]) + b"\r\n\r\n" + body)
        await up_writer.drain()
        while chunk := await asyncio.wait_for(up_reader.read(65536), 10):
            writer.write(chunk)
            await writer.drain()
        up_writer.close()
    finally:
        writer.close()


async def main(listen: int, upstream: int, proto: bytes, lifetime: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: forward(r, w, upstream, proto), "127.0.0.1", listen, limit=_LIMIT
    )
    async with server:
        await asyncio.sleep(lifetime)


if __name__ == "__main__":
    listen, upstream, proto, lifetime = sys.argv[1:5]
    asyncio.run(main(int(listen), int(upstream), proto.encode(), float(lifetime)))
