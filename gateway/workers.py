"""``onewindow serve --workers N``: N gateway processes on one port, each with a listening socket of its own.

The supervisor (the process ``onewindow serve`` started in) checks the configuration, then starts N worker
processes. Each binds its *own* socket to the same host and port with ``SO_REUSEPORT``, so the kernel spreads new
connections over the processes that are listening -- unlike one socket shared by every worker, where whichever
process wakes first takes the connection, and under a steady load one worker may take them all while another
idles. Each worker then serves the gateway under uvicorn on that socket::

    supervisor = Supervisor(WorkerSpec(config=Path("onewindow.yaml"), host="0.0.0.0", port=8000), workers=4)
    exit_code = supervisor.run()      # until SIGINT or SIGTERM; 1 when workers cannot start or keep dying

The supervisor starts again a worker that dies (after a backoff that grows, at most :class:`RestartBudget` times
within its window), and turns SIGINT or SIGTERM into a graceful stop of every worker: each stops listening,
finishes its requests in flight, and closes its sources. A second SIGINT (Ctrl+C again) stops them without
waiting. SIGHUP is passed on to every worker, each of which reloads the configuration file
(:mod:`gateway.reload`; each also notices a changed file by itself).

Several processes share only what lives outside them: :func:`refuse_process_state` refuses a configuration that
keeps such state in the memory of one process (the record cache, rate limit counters, a SQLite audit store).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.reload import DEFAULT_RELOAD_INTERVAL, ReloadingGateway
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway.logs import LogFormat

__all__ = ["RestartBudget", "Supervisor", "WorkerSpec", "refuse_process_state", "reuseport_socket"]

logger = logging.getLogger("onewindow.workers")

WORKER_START_FAILED = 3
"""A worker's exit code when it could not start (uvicorn's own for a failed start-up)."""
_STOPPED = (0, -signal.SIGTERM, -signal.SIGINT)  # how a worker asked to stop ends (uvicorn raises the signal again)


def refuse_process_state(config: GatewayConfig, workers: int) -> None:
    """Raise :class:`ConfigError` naming the first setting that keeps, in one process's memory, state that
    ``workers`` processes must share; nothing when ``workers`` is 1.

    >>> from gateway.config import parse_config
    >>> config = parse_config({"security": {"production": False}, "cache": {"url": "redis://cache:6379/0"},
    ...     "sources": {"s": {"kind": "rest", "department": "D", "base_url": "http://d",
    ...     "queries": {"q": {"path": "/{key}"}}, "provides": {"Person.name": {"value": "n"}}}}})
    >>> refuse_process_state(config, 2)
    Traceback (most recent call last):
    gateway.errors.ConfigError: security.rate_limit_storage: memory:// is per process; with --workers 2 use \
redis://... (the rate limit counters every worker shares)
    """
    if workers <= 1:
        return
    if config.cache.enabled and config.cache.url.startswith("memory://"):
        raise ConfigError(
            "cache.url",
            f"memory:// is per process; with --workers {workers} use redis://... (a cache every worker shares, "
            "and sees the others' invalidations in), or cache.enabled: false",
        )
    security = config.security
    limited = security.rate_limit is not None or security.rate_limit_per_client is not None
    if limited and security.rate_limit_storage.startswith("memory://"):
        raise ConfigError(
            "security.rate_limit_storage",
            f"memory:// is per process; with --workers {workers} use redis://... (the rate limit counters every "
            "worker shares)",
        )
    audit = config.auth.audit
    if audit is not None and audit.url.startswith("sqlite"):
        raise ConfigError(
            "auth.audit.url",
            f"a SQLite audit store is one file for one writing process; with --workers {workers} use "
            "postgresql+asyncpg://... (one chain every worker appends to)",
        )


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` beside the other workers' (``SO_REUSEPORT``), not yet listening.

    It is made with the protocol ``IPPROTO_TCP`` named: asyncio sets ``TCP_NODELAY`` on an accepted connection only
    when its socket says it is TCP, and an accepted socket has its listener's protocol (``0`` unless named).
    ``TCP_NODELAY`` is also set on the listener itself, which Linux copies to accepted connections whatever the
    event loop. Until it listens (uvicorn makes it listen once the lifespan has started) no connection is sent to it.

    >>> one, two = reuseport_socket("127.0.0.1", 0), None
    >>> two = reuseport_socket("127.0.0.1", one.getsockname()[1])   # the same port: no EADDRINUSE
    >>> one.close(), two.close()
    (None, None)
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to serve the gateway as ``onewindow serve`` would (it crosses a process spawn,
    so it holds only plain values; each worker reads the configuration file itself)."""

    config: Path
    host: str
    port: int
    log_level: str = "info"
    access_log: bool = True
    debug: bool | None = None
    log_format: LogFormat = "text"
    reload_interval: float = DEFAULT_RELOAD_INTERVAL  # seconds between polls of the configuration file
    subgraph: bool = False

    @classmethod
    def of(
        cls,
        settings: GatewaySettings,
        config: Path,
        host: str,
        port: int,
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        *,
        subgraph: bool = False,
    ) -> WorkerSpec:
        """The spec of ``onewindow serve CONFIG --host HOST --port PORT`` under the process ``settings``."""
        return cls(
            config,
            host,
            port,
            settings.log_level,
            settings.access_log,
            settings.debug or None,
            settings.log_format,
            reload_interval,
            subgraph,
        )


@dataclass
class RestartBudget:
    """How a worker that died is started again: after ``first_delay`` seconds, doubling with each restart still in
    the last ``window`` seconds up to ``longest_delay``; after ``limit`` restarts within ``window`` the supervisor
    gives up (a worker that keeps dying is a fault to see, not to hide).

    >>> now = [0.0]
    >>> budget = RestartBudget(limit=2, window=60, first_delay=0.5, clock=lambda: now[0])
    >>> budget.next_delay(), budget.next_delay(), budget.next_delay()
    (0.5, 1.0, None)
    >>> now[0] = 61.0
    >>> budget.next_delay()
    0.5
    """

    limit: int = 5
    window: float = 60.0
    first_delay: float = 0.5
    longest_delay: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _recent: collections.deque[float] = field(default_factory=collections.deque, init=False, repr=False)

    def next_delay(self) -> float | None:
        """Seconds to wait before starting a worker that just died, counting this restart; ``None`` once the
        budget is spent."""
        now = self.clock()
        while self._recent and now - self._recent[0] >= self.window:
            self._recent.popleft()
        if len(self._recent) >= self.limit:
            return None
        delay = min(self.first_delay * (1 << len(self._recent)), self.longest_delay)
        self._recent.append(now)
        return delay


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    ready: Connection | None  # until the worker says it listens


class Supervisor:
    """Start ``workers`` processes serving ``spec``, keep them running, stop them gracefully on SIGINT/SIGTERM.

    :meth:`run` returns the process's exit code: 0 after a stop asked for, 1 when a worker could not start or the
    :class:`RestartBudget` is spent (the other workers are then stopped too)."""

    def __init__(self, spec: WorkerSpec, workers: int, *, budget: RestartBudget | None = None) -> None:
        if workers < 1:
            raise ValueError("workers is at least 1")
        self.spec = spec
        self.workers = workers
        self.budget = budget or RestartBudget()
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state inherited by fork
        self._running: dict[int, _Worker] = {}
        self._restarts: dict[int, float] = {}  # worker index -> when (monotonic) to start it again
        self._signals: list[int] = []

    def run(self) -> int:
        wakeup_read, wakeup_write = socket.socketpair()
        wakeup_read.setblocking(False)
        wakeup_write.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wakeup_write.fileno())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        try:
            return self._supervise(wakeup_read)
        finally:
            self._kill_remaining()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            wakeup_read.close()
            wakeup_write.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        """Each worker reloads the configuration (one still starting ignores it, and reads the file anyway)."""
        logger.info("SIGHUP: the workers reload the configuration")
        self._signal_all(signal.SIGHUP)

    def _supervise(self, wakeup: socket.socket) -> int:
        for index in range(self.workers):
            self._start(index)
        if not self._wait_until_listening(wakeup):
            return self._stop(wakeup, failed=True)
        spec = self.spec
        logger.info("%d workers serve http://%s:%d (one SO_REUSEPORT socket each)", self.workers, spec.host, spec.port)
        while not self._signals:
            self._wait(wakeup, timeout=self._until_next_restart())
            self._reap_listening()
            for worker in self._exited():
                delay = self.budget.next_delay()
                if delay is None:
                    logger.error(
                        "worker %d (pid %s) exited with code %s; %d restarts within %gs: giving up",
                        worker.index,
                        worker.process.pid,
                        worker.process.exitcode,
                        self.budget.limit,
                        self.budget.window,
                    )
                    return self._stop(wakeup, failed=True)
                logger.error(
                    "worker %d (pid %s) exited with code %s; starting it again in %gs",
                    worker.index,
                    worker.process.pid,
                    worker.process.exitcode,
                    delay,
                )
                self._restarts[worker.index] = time.monotonic() + delay
            now = time.monotonic()
            for index, when in list(self._restarts.items()):
                if when <= now:
                    del self._restarts[index]
                    self._start(index)
        return self._stop(wakeup, failed=False)

    def _start(self, index: int) -> None:
        ready, told = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_serve_worker, args=(self.spec, told, self.workers), name=f"onewindow-worker-{index}", daemon=False
        )
        process.start()
        told.close()  # the worker holds its end: EOF here when it dies before saying it listens
        self._running[index] = _Worker(index, process, ready)

    def _wait_until_listening(self, wakeup: socket.socket) -> bool:
        """Until every worker listens: ``False`` when one exits first (nothing serves yet: nothing to restart) or
        a signal asks to stop."""
        while any(worker.ready is not None for worker in self._running.values()):
            if self._signals:
                return False
            self._wait(wakeup, timeout=None)
            self._reap_listening()
            for worker in self._exited():
                logger.error(
                    "worker %d (pid %s) could not start (exit code %s); stopping",
                    worker.index,
                    worker.process.pid,
                    worker.process.exitcode,
                )
                return False
        return True

    def _wait(self, wakeup: socket.socket, timeout: float | None) -> None:
        waitables: list[Any] = [wakeup]
        for worker in self._running.values():
            waitables.append(worker.process.sentinel)
            if worker.ready is not None:
                waitables.append(worker.ready)
        wait(waitables, timeout)
        with contextlib.suppress(BlockingIOError):
            while wakeup.recv(64):
                pass

    def _reap_listening(self) -> None:
        for worker in self._running.values():
            if worker.ready is not None and worker.ready.poll():
                with contextlib.suppress(EOFError):  # EOF: it died before listening, and is reaped as exited
                    worker.ready.recv()
                    worker.ready.close()
                    worker.ready = None
                    logger.info("worker %d (pid %s) listens", worker.index, worker.process.pid)

    def _exited(self) -> list[_Worker]:
        gone = [worker for worker in self._running.values() if not worker.process.is_alive()]
        for worker in gone:
            worker.process.join()
            if worker.ready is not None:
                worker.ready.close()
            del self._running[worker.index]
        return gone

    def _until_next_restart(self) -> float | None:
        if not self._restarts:
            return None
        return max(0.0, min(self._restarts.values()) - time.monotonic())

    def _stop(self, wakeup: socket.socket, *, failed: bool) -> int:
        """SIGTERM to every worker (uvicorn: stop listening, finish what is in flight), and SIGINT at a second
        SIGINT (uvicorn: stop without waiting, as at a second Ctrl+C); wait for all of them."""
        self._restarts.clear()
        self._signal_all(signal.SIGTERM)
        before, forced = len(self._signals), False
        clean = True
        while self._running:
            self._wait(wakeup, timeout=None)
            if not forced and signal.SIGINT in self._signals[before:]:  # a repeated SIGTERM changes nothing
                forced = True
                logger.warning("stopping the workers without waiting for their requests in flight")
                self._signal_all(signal.SIGINT)
            for worker in self._exited():
                clean = clean and worker.process.exitcode in _STOPPED
        return 1 if failed or not clean else 0

    def _signal_all(self, signum: int) -> None:
        for worker in self._running.values():
            if worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signum)

    def _kill_remaining(self) -> None:
        """Only when :meth:`run` is left by an exception: no worker outlives its supervisor."""
        for worker in self._running.values():
            worker.process.kill()
            worker.process.join(timeout=10)


class _WorkerServer(uvicorn.Server):
    """uvicorn's server, telling the supervisor once its socket listens."""

    def __init__(self, config: uvicorn.Config, ready: Connection) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.send(os.getpid())
            self._ready.close()


def _serve_worker(spec: WorkerSpec, ready: Connection, workers: int) -> None:
    """A worker process: read the configuration, build the gateway, bind its own socket and serve on it; reload
    the configuration when it changes or at SIGHUP, refusing what the supervisor would have refused."""
    from gateway.app import serving_builder  # in the worker: the supervisor needs none of the gateway's imports here
    from gateway.config import load_config
    from gateway.logs import logging_config

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the gateway's lifespan listens for it
    log_config = logging_config(spec.log_level, spec.log_format)  # redacted, as ``onewindow serve``'s
    logging.config.dictConfig(log_config)
    build = serving_builder(debug=spec.debug, subgraph=spec.subgraph)
    try:
        gateway = load_config(spec.config)
        application = ReloadingGateway(
            spec.config,
            build(gateway),
            gateway,
            build=build,
            check=functools.partial(refuse_process_state, workers=workers),
            interval=spec.reload_interval,
            hangup=True,
            freeze_startup_objects=True,
        )
        sock = reuseport_socket(spec.host, spec.port)
    except (ConfigError, OSError) as exc:
        logger.error("worker %d cannot start: %s", os.getpid(), exc)
        raise SystemExit(WORKER_START_FAILED) from None
    config = uvicorn.Config(
        application,
        log_level=spec.log_level,
        access_log=spec.access_log,
        log_config=log_config,
    )
    server = _WorkerServer(config, ready)
    # Once it has stopped gracefully, uvicorn raises the signal that stopped it again: SIGTERM ends the process
    # (the supervisor counts that as a clean stop), SIGINT raises KeyboardInterrupt, caught here as uvicorn does.
    with sock, contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(WORKER_START_FAILED)
