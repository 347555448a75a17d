"""Run an ASGI application under uvicorn inside the current event loop, on a loopback port.

Used by ``onewindow demo`` to start the demo departments beside the gateway, and by tests and benchmarks to start
real servers::

    async with serve_asgi(app, port=0) as url:      # port 0: any free port
        httpx.get(f"{url}/health")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

__all__ = ["serve_asgi"]


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    access_log: bool = False,
    log_config: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yield its base URL (``http://127.0.0.1:PORT``).

    ``log_config`` replaces uvicorn's own logging configuration (``onewindow demo`` passes
    :func:`gateway.logs.logging_config`)."""
    options: dict[str, Any] = {"log_config": log_config} if log_config is not None else {}
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", access_log=access_log, **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raises why the server could not start
                raise RuntimeError(f"server for {app!r} stopped before it started")
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
