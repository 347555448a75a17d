"""The processes of a federation test: OneWindow city gateways started as ``onewindow serve --subgraph``, and a real
federation router composing them (Apollo Gateway with IntrospectAndCompose, from npm).

    async with city_subgraph(config_file, variables, logs) as url:      # http://127.0.0.1:<port>/graphql
        async with federation_router({"city-a": url_a, "city-b": url_b}, logs) as router:
            ...                                                           # POST router with the caller's headers

The router is pinned in ``tests/federation/router/`` (``package.json``, ``package-lock.json``, ``router.js``) and
installed with ``npm ci`` into ``tests/federation/.router/`` (git-ignored) the first time it is needed, and again
when a pinned file changes. Without Node.js or npm, or when the install fails, the test is skipped with the reason
-- and fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx

from tests.conftest import unavailable, unused_port

__all__ = ["ROUTER_CACHE", "ROUTER_PACKAGE", "city_subgraph", "federation_router", "install_router"]

ROUTER_PACKAGE = Path(__file__).parent / "router"
ROUTER_CACHE = Path(__file__).parent / ".router"
_PINNED = ("package.json", "package-lock.json", "router.js")
_STAMP = "installed-from.sha256"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


def _pinned_digest() -> str:
    digest = hashlib.sha256()
    for name in _PINNED:
        digest.update((ROUTER_PACKAGE / name).read_bytes())
    return digest.hexdigest()


def _copy_pinned(cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name in _PINNED:
        shutil.copyfile(ROUTER_PACKAGE / name, cache / name)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def install_router(cache: Path = ROUTER_CACHE) -> Path:
    """``npm ci`` the pinned router into ``cache`` unless it is there already; the path of its script."""
    script, stamp, digest = cache / "router.js", cache / _STAMP, _pinned_digest()
    if script.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return script
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not on PATH (needed for the federation router)")
    _copy_pinned(cache)
    npm = await asyncio.create_subprocess_exec(
        "npm",
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        cwd=cache,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await npm.communicate()
    if npm.returncode != 0:
        unavailable(f"npm ci of the federation router in {cache} failed: {output.decode(errors='replace')[-2000:]}")
    stamp.write_text(digest + "\n")
    return script


@contextlib.asynccontextmanager
async def _process(
    *command: str, log: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``command`` running, its output in ``log``; stopped (SIGTERM, then killed) when the block ends."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=out, env=dict(env) if env is not None else None
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _until_ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    """Wait for ``url`` to answer 200 while ``process`` lives (a process starting up: no clock to move)."""
    deadline = asyncio.get_running_loop().time() + _START_TIMEOUT
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"{url} exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{url} not ready within {_START_TIMEOUT}s:\n{_tail(log)}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def city_subgraph(config: Path, variables: Mapping[str, str], logs: Path) -> AsyncIterator[str]:
    """``onewindow serve CONFIG --subgraph`` in its own process on a free loopback port: its GraphQL URL."""
    port = unused_port()
    log = logs / f"{config.stem}.log"
    command = (sys.executable, "-m", "gateway", "serve", str(config), "--subgraph", "--host", "127.0.0.1")
    env = {**os.environ, **variables, "ONEWINDOW_ACCESS_LOG": "false"}
    async with _process(*command, "--port", str(port), log=log, env=env) as process:
        base = f"http://127.0.0.1:{port}"
        await _until_ready(f"{base}/readyz", process, log)
        yield f"{base}/graphql"


@contextlib.asynccontextmanager
async def federation_router(
    subgraphs: Mapping[str, str], logs: Path, *, composition_keys: Mapping[str, str] | None = None
) -> AsyncIterator[str]:
    """The pinned router composing ``subgraphs`` (name: GraphQL URL) on a free loopback port: its URL. It reads a
    subgraph's SDL under that subgraph's API key in ``composition_keys``, if any (a city that admits no anonymous
    request)."""
    script = await install_router()
    options = [f"--subgraph={name}={url}" for name, url in subgraphs.items()]
    log = logs / "router.log"
    env = {**os.environ, "ROUTER_COMPOSITION_KEYS": json.dumps(dict(composition_keys or {}))}
    async with _process("node", str(script), "--port", "0", *options, log=log, env=env) as process:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"the router did not start within {_START_TIMEOUT}s:\n{_tail(log)}") from None
        if not line:
            raise AssertionError(f"the router exited at start ({await process.wait()}):\n{_tail(log)}")
        url: str = json.loads(line)["url"]
        yield url
