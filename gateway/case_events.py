"""Case events as they happen, for the front ends' subscriptions (``subscription { caseEvents }``).

Each workflow action that writes an event through to the approval platform publishes a :class:`CaseNotice`. With a
Redis cache the notices go through Redis pub/sub, so that a subscriber connected to one gateway process hears an
action taken through another; otherwise they stay in this process. A subscriber too slow to keep up loses its
oldest notices rather than holding the publisher up.

    async with bus.subscribe() as notices:
        async for notice in notices:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.errors import ConfigError

__all__ = ["CaseEventBus", "CaseNotice", "LocalEventBus", "RedisEventBus"]

logger = logging.getLogger("onewindow.workflow")

# Notices one subscriber may fall behind by before the oldest are dropped.
QUEUE_SIZE = 256


@dataclass(frozen=True)
class CaseNotice:
    """One event of one case, with what a subscriber's rights are decided on (the item's department, the
    applicant). ``at`` is ISO 8601; ``event`` and ``status`` are unified values (``SUPPLEMENT_REQUESTED``)."""

    case_number: str
    event: str
    at: str
    handler: str | None
    note: str | None
    status: str
    service_item: str
    department: str
    applicant: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> CaseNotice:
        return cls(**json.loads(text))


class CaseEventBus(ABC):
    """Publish notices; subscribe to every notice published from now on."""

    @abstractmethod
    async def publish(self, notice: CaseNotice) -> None: ...

    @abstractmethod
    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[CaseNotice]]: ...

    @abstractmethod
    async def subscribers(self) -> int:
        """How many subscriptions hear a notice published now (across processes, with Redis)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class LocalEventBus(CaseEventBus):
    """Notices within this process."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[CaseNotice]] = set()

    async def publish(self, notice: CaseNotice) -> None:
        for queue in self._queues:
            _offer(queue, notice)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[CaseNotice]]:
        queue: asyncio.Queue[CaseNotice] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield _drain(queue)
        finally:
            self._queues.discard(queue)

    async def subscribers(self) -> int:
        return len(self._queues)


class RedisEventBus(CaseEventBus):
    """Notices through a Redis channel: every gateway process on the same Redis hears every action."""

    def __init__(self, url: str, namespace: str) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError:
            raise ConfigError("cache.url", "the workflow on Redis needs the redis extra: 'onewindow[redis]'") from None
        self._client = Redis.from_url(url)
        self.channel = f"{namespace}:case-events"

    async def publish(self, notice: CaseNotice) -> None:
        await self._client.publish(self.channel, notice.to_json())

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[CaseNotice]]:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        queue: asyncio.Queue[CaseNotice] = asyncio.Queue(QUEUE_SIZE)

        async def listen() -> None:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    try:
                        _offer(queue, CaseNotice.from_json(message["data"]))
                    except (ValueError, TypeError, KeyError) as exc:
                        logger.warning("unreadable case notice on %s: %s", self.channel, type(exc).__name__)

        task = asyncio.create_task(listen())
        try:
            yield _drain(queue)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pubsub.unsubscribe(self.channel)
            await pubsub.aclose()

    async def subscribers(self) -> int:
        counts = await self._client.pubsub_numsub(self.channel)
        return int(counts[0][1]) if counts else 0

    async def aclose(self) -> None:
        await self._client.aclose()


def _offer(queue: asyncio.Queue[CaseNotice], notice: CaseNotice) -> None:
    if queue.full():
        queue.get_nowait()  # the subscriber is behind: its oldest notice goes
        logger.warning("a case-event subscriber fell behind; its oldest notice was dropped")
    queue.put_nowait(notice)


async def _drain(queue: asyncio.Queue[CaseNotice]) -> AsyncIterator[CaseNotice]:
    while True:
        yield await queue.get()
