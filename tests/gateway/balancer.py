"""A loopback TCP load balancer for the scale tests: round robin over gateway processes, each new connection to the
next backend, and a backend that refuses the connection (a killed process) skipped for the next one.

It balances connections, not requests, as a layer-4 balancer in front of gateway replicas does: a client that
wants each request balanced opens a connection per request (``Connection: close``)::

    async with RoundRobin([("127.0.0.1", 8001), ("127.0.0.1", 8002)]) as balancer:
        httpx.get(f"{balancer.url}/healthz", headers={"Connection": "close"})
        balancer.connections      # per backend, connections it carried
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

__all__ = ["RoundRobin"]

Backend = tuple[str, int]
_CHUNK = 65536


class RoundRobin:
    """Listens on a loopback port; pipes each connection to the next backend that accepts it."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        self.backends = list(backends)
        self.connections: Counter[Backend] = Counter()
        self.refused: Counter[Backend] = Counter()  # connection attempts a backend refused (then the next one tried)
        self._turn = itertools.cycle(range(len(self.backends)))
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RoundRobin:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The next backend in turn that accepts a connection; ``None`` when none does."""
        first = next(self._turn)
        for offset in range(len(self.backends)):
            backend = self.backends[(first + offset) % len(self.backends)]
            try:
                streams = await asyncio.open_connection(*backend)
            except OSError:
                self.refused[backend] += 1
                continue
            self.connections[backend] += 1
            return streams
        return None

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            streams = await self._connect()
            if streams is None:
                return
            backend_reader, backend_writer = streams
            try:
                await asyncio.gather(
                    _pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer), return_exceptions=True
                )
            finally:
                backend_writer.close()
        finally:
            client_writer.close()
            self._pipes.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file; a connection reset on either side ends the copy and closes the other side
    (a client then sees its request fail, as behind a real balancer when a backend dies mid-request)."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
