"""A TCP fault proxy for end-to-end fault tests: sits in front of a real server and misbehaves on demand.

    async with FaultProxy(upstream_port) as proxy:   # forwards faithfully until told otherwise
        proxy.mode = Fault.STALL                     # from now on, on every connection, new or pooled

The mode is read for every chunk, so a connection pooled while the proxy was forwarding (a keep-alive HTTP
connection, a pooled database session) meets the fault too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum


class Fault(enum.Enum):
    FORWARD = "forward"  # a faithful proxy
    CANNED = "canned"  # answer the next request with ``canned`` (raw bytes) and close, never reaching upstream
    STALL = "stall"  # swallow what the client sends: no answer, ever
    TRICKLE = "trickle"  # the real answer, one byte every ``trickle_interval`` seconds
    CORRUPT = "corrupt"  # the real answer with the first byte of every chunk flipped (lengths stay intact)


def http_response(status: str, body: bytes, content_type: str) -> bytes:
    """A raw HTTP/1.1 response that closes the connection."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    return head.encode() + b"\r\n" + body


class FaultProxy:
    def __init__(self, upstream_port: int, *, trickle_interval: float = 0.3) -> None:
        self.upstream_port = upstream_port
        self.trickle_interval = trickle_interval
        self.mode = Fault.FORWARD
        self.canned = b""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for pump in (self._client_to_upstream(reader, writer, up_writer), self._upstream_to_client(up_reader, writer)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _client_to_upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up_writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                if self.mode is Fault.CANNED:
                    writer.write(self.canned)
                    await writer.drain()
                    writer.close()
                    up_writer.close()
                    return
                if self.mode is Fault.STALL:
                    continue
                up_writer.write(chunk)
                await up_writer.drain()
        up_writer.close()

    async def _upstream_to_client(self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await up_reader.read(65536):
                if self.mode is Fault.TRICKLE:
                    for byte in chunk:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(self.trickle_interval)
                    continue
                if self.mode is Fault.CORRUPT:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                writer.write(chunk)
                await writer.drain()
        writer.close()
