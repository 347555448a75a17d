"""A real OAuth2 / OpenID Connect server for tests: the npm package ``oauth2-mock-server`` (7.2.x) on loopback.

Tests of bearer tokens and of OAuth2 clients talk to this server, never to a hand-written fake of it::

    from tests.oauth2_server import start_oauth2_mock_server

    async def test_something() -> None:
        async with start_oauth2_mock_server() as server:
            token = await server.token({"sub": "zhang.wei", "aud": "onewindow"}, expires_in=300)
            ...  # verify against server.issuer / server.jwks_url

What the server offers (``server.issuer`` is ``http://127.0.0.1:<port>``):

- ``GET {issuer}/.well-known/openid-configuration`` and ``GET {issuer}/jwks`` (``server.jwks_url``), RS256 keys.
- ``POST {issuer}/token`` (``server.token_url``), the standard grants. **Client credentials** (for OAuth2 client
  tests)::

      response = await client.post(server.token_url, auth=("onewindow", "secret"),
                                   data={"grant_type": "client_credentials", "scope": "read", "aud": "civil_affairs"})
      response.json()  # {"access_token": "<JWT>", "token_type": "Bearer", "expires_in": 3600, "scope": "read"}

  The server does not authenticate clients (any id and secret are accepted). The access token is a JWT signed with
  the current key: ``iss`` = ``server.issuer``, ``scope`` and ``aud`` from the form, ``iat``/``nbf``/``exp``.
  Extra form fields, honoured on every grant: ``claims`` (a JSON object merged into the payload; ``null`` removes a
  claim), ``header`` (a JSON object merged into the JWT header, e.g. an unknown ``kid``) and ``expires_in``
  (seconds from ``iat``, negative for an expired token; also echoed as the response's ``expires_in``).
- Key rotation: :meth:`OAuth2MockServer.rotate` publishes a new key and signs with it from then on (the old key stays
  in the JWKS until :meth:`OAuth2MockServer.remove_key`).

Node.js (20+) and npm are needed: the package is installed on first use with ``npm ci`` into ``tests/auth/node``
(``package.json`` and ``package-lock.json`` are committed). Without them the test is skipped locally and fails under
``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unused_port

__all__ = ["NODE_PROJECT", "OAuth2MockServer", "ServerTls", "start_oauth2_mock_server"]

NODE_PROJECT = Path(__file__).parent / "auth" / "node"
_LAUNCHER = NODE_PROJECT / "launch.js"
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 5.0


def _unavailable(message: str) -> None:
    """Skip locally, fail under CI (where every tool the suite needs must be present)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


async def _ensure_installed() -> None:
    """``npm ci`` once, and again whenever package-lock.json is newer than the installed tree."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not on PATH (needed for the OAuth2 test server)")
    installed = NODE_PROJECT / "node_modules" / ".package-lock.json"
    lock = NODE_PROJECT / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = await asyncio.create_subprocess_exec(
        "npm",
        "ci",
        "--no-audit",
        "--no-fund",
        cwd=NODE_PROJECT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await npm.communicate()
    if npm.returncode != 0:
        _unavailable(f"npm ci in {NODE_PROJECT} failed: {output.decode(errors='replace')[-2000:]}")


@dataclass
class OAuth2MockServer:
    """A running oauth2-mock-server; use :func:`start_oauth2_mock_server` to get one."""

    issuer: str
    signing_kid: str
    _client: httpx.AsyncClient

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    async def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        expires_in: int = 3600,
        header: dict[str, Any] | None = None,
        scope: str | None = None,
    ) -> str:
        """A JWT signed by the current key with ``claims`` merged over the server's (``iss``, ``iat``, ``nbf``,
        ``exp``); a claim set to ``None`` is removed. ``header`` fields are merged into the JWT header."""
        form = {"grant_type": "client_credentials", "expires_in": str(expires_in)}
        if claims:
            form["claims"] = json.dumps(claims)
        if header:
            form["header"] = json.dumps(header)
        if scope is not None:
            form["scope"] = scope
        response = await self._client.post(self.token_url, data=form)
        response.raise_for_status()
        access_token: str = response.json()["access_token"]
        return access_token

    async def jwks(self) -> dict[str, Any]:
        response = await self._client.get(self.jwks_url)
        response.raise_for_status()
        keys: dict[str, Any] = response.json()
        return keys

    async def rotate(self, alg: str = "RS256") -> str:
        """Publish a new key and sign every later token with it; returns its ``kid``. Old keys stay published."""
        response = await self._client.post(f"{self.issuer}/_control/keys", json={"alg": alg})
        response.raise_for_status()
        self.signing_kid = response.json()["kid"]
        return self.signing_kid

    async def remove_key(self, kid: str) -> None:
        """Withdraw a key from the JWKS (and from signing, if it was the current one)."""
        response = await self._client.delete(f"{self.issuer}/_control/keys/{kid}")
        response.raise_for_status()


@dataclass(frozen=True)
class ServerTls:
    """HTTPS for the server: its certificate and key, the CA that signed them (for the test's own client), and
    ``client_ca`` to require a client certificate that CA issued (mutual TLS)."""

    cert: Path
    key: Path
    ca: Path
    client_ca: Path | None = None
    client_cert: tuple[Path, Path] | None = None  # what the test's own client presents when client_ca is set


@asynccontextmanager
async def start_oauth2_mock_server(
    *, port: int | None = None, alg: str = "RS256", tls: ServerTls | None = None
) -> AsyncIterator[OAuth2MockServer]:
    """Start oauth2-mock-server on ``127.0.0.1:port`` (an unused port by default) with one ``alg`` key, over HTTPS
    with ``tls``; stop it on exit. Skips (locally) or fails (under CI) when Node.js or npm is missing."""
    await _ensure_installed()
    options = ["--port", str(port or unused_port()), "--alg", alg]
    verify: ssl.SSLContext | bool = True
    if tls is not None:
        options += ["--cert", str(tls.cert), "--key", str(tls.key)]
        verify = ssl.create_default_context(cafile=str(tls.ca))
        if tls.client_ca is not None:
            options += ["--client-ca", str(tls.client_ca)]
            if tls.client_cert is not None:
                verify.load_cert_chain(*tls.client_cert)
    process = await asyncio.create_subprocess_exec(
        "node",
        str(_LAUNCHER),
        *options,
        cwd=NODE_PROJECT,
        env={**os.environ, "NODE_ENV": "test"},  # express logs handled errors to stderr unless NODE_ENV=test
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"oauth2-mock-server did not start within {_START_TIMEOUT}s", pytrace=False)
        if not line:
            pytest.fail(f"oauth2-mock-server exited at start (code {await process.wait()})", pytrace=False)
        started = json.loads(line)
        async with httpx.AsyncClient(timeout=5.0, verify=verify) as client:
            yield OAuth2MockServer(issuer=started["issuer"], signing_kid=started["kid"], _client=client)
    finally:
        process.stdin.close()  # the launcher stops when its stdin closes
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
        await process.stdout.read()
