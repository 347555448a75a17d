"""Fixtures shared by the whole suite: access to the machine's real database and cache servers.

A test that needs PostgreSQL, MariaDB or Redis asks for the matching fixture. Locally it is skipped, with the
reason, when the server does not answer; under ``CI=true`` an absent server fails the run instead.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

POSTGRES_URL = os.environ.get("ONEWINDOW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("ONEWINDOW_TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("ONEWINDOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def unavailable(message: str) -> NoReturn:
    """Skip (locally) or fail (in CI) a test whose server or tool is missing, saying which."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(f"{message}; provide it to run this test")


def require_server(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when the server ``name`` does not answer at host:port."""
    if not _reachable(host, port):
        unavailable(f"{name} is not reachable at {host}:{port}")


@pytest.fixture
def postgres_url() -> str:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def mariadb_url() -> str:
    require_server("MariaDB", "127.0.0.1", 3306)
    return MARIADB_URL


@pytest.fixture
def redis_url() -> str:
    require_server("Redis", "127.0.0.1", 6379)
    return REDIS_URL


def unused_port() -> int:
    """A loopback port nothing listens on (for servers to bind, or for 'connection refused')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def free_port() -> int:
    return unused_port()
