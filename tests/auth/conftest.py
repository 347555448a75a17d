"""Fixtures the auth tests share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def exit_stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    """Stores, logs and other resources a test opens with ``enter_async_context``, closed after the test."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack
