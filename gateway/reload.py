"""Hot reload: a changed configuration file (or SIGHUP) swapped in without dropping the requests in flight.

:class:`ReloadingGateway` is the ASGI application ``onewindow serve`` runs. It holds one *generation* -- a gateway
built by :func:`~gateway.app.create_app` from the file, its lifespan entered (sources, adapters, audit, identity
open) -- and hands each request to the generation current when the request arrives::

    build = serving_builder()                                   # one set of counters for every generation
    first = build(load_config(path))                            # start-up: a wrong file exits 2, naming the key
    gateway = ReloadingGateway(path, first, build=build, hangup=True)
    uvicorn.run(gateway)                                        # polls the file every 2 s, and reloads at SIGHUP

A reload reads the file again and builds the next generation off to the side with the same code as start-up
(:func:`~gateway.config.load_config`, then ``build``, then its lifespan). A file that fails any of it is refused with
the very error start-up would print, and the running generation stays. Otherwise the next generation becomes the
current one in one assignment -- requests already running finish on the generation they started on -- and the old
one's lifespan is left (its adapters closed) once its last request has finished. Each outcome is one log line on
``onewindow.reload``: ``reloaded`` or ``refused`` with the error, and the file's SHA-256 prefix (never its text).

The file is polled (its SHA-256, every ``interval`` seconds), not watched for events: a Kubernetes ConfigMap
volume changes by swapping a symbolic link, which content hashes see whatever the file system reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from starlette.applications import Starlette
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError

__all__ = ["DEFAULT_RELOAD_INTERVAL", "ReloadOutcome", "ReloadingGateway", "file_digest"]

logger = logging.getLogger("onewindow.reload")

DEFAULT_RELOAD_INTERVAL = 2.0
"""Seconds between two reads of the configuration file; ``0`` reads it only at SIGHUP."""


def file_digest(path: Path) -> str:
    """The SHA-256 of the file's bytes (hex), or a marker naming why it cannot be read: what a poll compares.

    >>> file_digest(Path("/nonexistent/onewindow.yaml"))
    'unreadable: No such file or directory'
    """
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload did: ``reloaded`` (``generation`` now serves) or ``refused`` with ``error``, the message
    start-up would have printed for the same file."""

    status: Literal["reloaded", "refused"]
    digest: str
    generation: int
    error: str | None = None


@dataclass(eq=False)
class _Generation:
    """One built gateway and the requests running on it."""

    number: int
    app: Starlette
    config: GatewayConfig
    digest: str
    lifespan: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Enter the app's own lifespan, as a server would: sources, audit and identity open."""
        await self.lifespan.enter_async_context(self.app.router.lifespan_context(self.app))

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_flight += 1
        self.idle.clear()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()

    async def retire(self) -> None:
        """Once its last request has finished, leave its lifespan: its adapters, cache and audit close."""
        if self.in_flight:
            await self.idle.wait()
        await self.lifespan.aclose()


class ReloadingGateway:
    """The gateway of the configuration file ``path``, rebuilt when the file changes or at SIGHUP.

    ``app`` is the gateway already built from ``config`` (start-up's, whose errors exit the command); ``build``
    turns a later configuration into a gateway as start-up did (:func:`~gateway.app.serving_builder`'s);
    ``load`` reads the file as start-up did; ``check`` refuses what start-up also refused beyond those (``serve
    --workers``: :func:`~gateway.workers.refuse_process_state`). ``interval``: seconds between polls of the file,
    ``0`` for none. ``hangup``: reload at SIGHUP (the process's main thread only). ``freeze_startup_objects``: as
    :func:`~gateway.app.create_app`'s, done here once per generation, so that an old generation is not kept frozen.
    """

    def __init__(
        self,
        path: Path,
        app: Starlette,
        config: GatewayConfig,
        *,
        build: Callable[[GatewayConfig], Starlette],
        load: Callable[[Path], GatewayConfig] = load_config,
        check: Callable[[GatewayConfig], None] | None = None,
        interval: float = DEFAULT_RELOAD_INTERVAL,
        hangup: bool = False,
        freeze_startup_objects: bool = False,
    ) -> None:
        self.path = path
        self._build = build
        self._load = load
        self._check = check
        self._interval = interval
        self._hangup = hangup
        self._freeze = freeze_startup_objects
        self._current = _Generation(1, app, config, file_digest(path))
        self._tried = self._current.digest  # the last version of the file a reload was attempted with
        self._lock = asyncio.Lock()
        self._asked = asyncio.Event()
        self._retiring: set[asyncio.Task[None]] = set()
        self._router = Router(lifespan=self._serving)

    @property
    def config(self) -> GatewayConfig:
        """The configuration new requests are served with."""
        return self._current.config

    @property
    def generation(self) -> int:
        """1 at start-up, one more at each reload that was not refused."""
        return self._current.number

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._router.lifespan(scope, receive, send)
            return
        await self._current.serve(scope, receive, send)

    async def reload(self) -> ReloadOutcome:
        """Read the file and swap in the gateway it describes; refuse it, keeping the running one, when start-up
        would have refused it. Reloads run one at a time."""
        async with self._lock:
            digest = await asyncio.to_thread(file_digest, self.path)
            self._tried = digest
            number = self._current.number + 1
            try:
                config = await asyncio.to_thread(self._load, self.path)
                if self._check is not None:
                    self._check(config)
                following = _Generation(number, self._build(config), config, digest)
                await following.start()
            except ConfigError as exc:
                return self._refused(digest, str(exc))
            except Exception as exc:  # a lifespan that cannot start: a store refusing, a seal key that does not match
                return self._refused(digest, f"{type(exc).__name__}: {exc}")
            previous, self._current = self._current, following
            task = asyncio.create_task(self._retire(previous), name=f"retire configuration {previous.number}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            logger.info("configuration %s reloaded (sha256 %s): generation %d", self.path, digest[:12], number)
            return ReloadOutcome("reloaded", digest, number)

    async def settled(self) -> None:
        """Until every generation replaced so far has been closed."""
        while self._retiring:
            await asyncio.gather(*self._retiring)

    def _refused(self, digest: str, error: str) -> ReloadOutcome:
        logger.warning(
            "configuration %s refused (sha256 %s), generation %d stays: %s",
            self.path,
            digest[:12],
            self._current.number,
            error,
        )
        return ReloadOutcome("refused", digest, self._current.number, error)

    async def _retire(self, previous: _Generation) -> None:
        try:
            await previous.retire()
        except Exception:
            logger.exception("configuration generation %d did not close cleanly", previous.number)
        else:
            logger.info("configuration generation %d closed after its last request", previous.number)
        if self._freeze:  # what the old generation held may now be collected; what the new one holds stays frozen
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    @contextlib.asynccontextmanager
    async def _serving(self, router: object) -> AsyncIterator[None]:
        await self._current.start()
        if self._freeze:
            gc.collect()
            gc.freeze()
        loop = asyncio.get_running_loop()
        if self._hangup:
            loop.add_signal_handler(signal.SIGHUP, self._asked.set)
        watcher = asyncio.create_task(self._watch(), name="watch the configuration file")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if self._hangup:
                loop.remove_signal_handler(signal.SIGHUP)
            async with self._lock:  # a reload under way finishes first
                await self.settled()
                if self._freeze:
                    gc.unfreeze()
                await self._current.retire()

    async def _watch(self) -> None:
        """Reload at each SIGHUP, and when a poll finds the file other than the version last tried."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval or None):
                    await self._asked.wait()
            if self._asked.is_set():
                self._asked.clear()
                logger.info("SIGHUP: reloading configuration %s", self.path)
                await self.reload()
            elif self._interval and await asyncio.to_thread(file_digest, self.path) != self._tried:
                await self.reload()
