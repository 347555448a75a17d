"""Single-flight across gateway processes on the real Redis: two :class:`RecordCache` instances stand for two
processes (they share no in-process futures, only Redis), and the department counts its calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from cache import Fetched, RecordCache
from gateway.config import CachePolicy
from gateway.errors import SourceUnavailable
from gateway.metrics import GatewayMetrics
from tests.cache.conftest import Department
from tests.gateway.faults import FaultProxy
from tests.gateway.test_metrics import samples

SOURCE, QUERY = "civil_affairs", "marriage"
LI, WANG = "110101199003074518", "310104198512301234"
LONG_LEASE = 30.0  # far longer than any of these tests: a key taken over was released, not expired

MakeCache = Callable[..., RecordCache]
MakeDepartment = Callable[..., Department]


def _people() -> dict[str, list[dict[str, Any]]]:
    return {LI: [{"SFZH": LI, "XM": "Li Hua"}], WANG: [{"SFZH": WANG, "XM": "Wang Fang"}]}


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _waiting(client: redis.Redis, cache: RecordCache) -> None:
    """Until ``cache`` waits for another process's answer: it listens to the namespace's announcements."""
    channel = cache.keys.flight_channel()
    for _ in range(1000):
        ((_, listeners),) = await client.pubsub_numsub(channel)
        if listeners:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second process never waited for the first")


async def _settled(cache: RecordCache) -> None:
    """Until ``cache``'s loads have stored their answers and released their leases."""
    await _until(lambda: not cache._tasks, "the loads to finish")


async def _two_processes_loading(
    first: RecordCache, second: RecordCache, dept: Department, client: redis.Redis, namespace: str
) -> tuple[list[dict[str, Fetched]], list[bytes]]:
    """Five fetches of LI and WANG in ``first`` load them through ``dept``, held at its gate until five in ``second``
    wait for that load: the answers of all ten fetches, and the leases there were while the department was held."""
    dept.gate = asyncio.Event()
    policy = CachePolicy()
    loading = [asyncio.create_task(first.fetch(SOURCE, QUERY, [LI, WANG], policy, dept)) for _ in range(5)]
    await _until(lambda: bool(dept.calls), "the first process calling the department")
    waiting = [asyncio.create_task(second.fetch(SOURCE, QUERY, [WANG, LI], policy, dept)) for _ in range(5)]
    await _waiting(client, second)
    leases = [key async for key in client.scan_iter(match=f"{namespace}#lease:*")]
    dept.gate.set()
    answers = await asyncio.gather(*loading, *waiting)
    return answers, leases


async def test_two_processes_loading_the_same_keys_call_the_department_once(
    redis_cache: MakeCache, redis_client: redis.Redis, redis_namespace: str, department: MakeDepartment
) -> None:
    first, second = redis_cache(), redis_cache()
    dept = department(_people())

    answers, leases = await _two_processes_loading(first, second, dept, redis_client, redis_namespace)

    assert dept.calls == [[LI, WANG]]
    assert all(answer[LI].records == ({"SFZH": LI, "XM": "Li Hua"},) for answer in answers)
    assert all(answer[WANG].records == ({"SFZH": WANG, "XM": "Wang Fang"},) for answer in answers)
    assert (second.stats.misses, second.stats.calls, second.stats.coalesced_remote) == (10, 0, 2)
    assert second.stats.coalesced == 8  # its other four fetches joined its own wait, one lease per key
    assert len(leases) == 2  # one per key, held by the first process, named by the hashed key only
    assert not any(number.encode() in lease for lease in leases for number in (LI, WANG))
    await _settled(first)
    assert [key async for key in redis_client.scan_iter(match=f"{redis_namespace}#lease:*")] == []


async def test_a_holder_whose_call_fails_lets_the_waiting_process_call(
    redis_cache: MakeCache, redis_client: redis.Redis, department: MakeDepartment
) -> None:
    first, second = redis_cache(lease=LONG_LEASE), redis_cache(lease=LONG_LEASE)
    failing, working = department(_people()), department(_people())
    failing.gate, failing.failure = asyncio.Event(), SourceUnavailable(SOURCE, "connection refused")

    holder = asyncio.create_task(first.fetch(SOURCE, QUERY, [LI], CachePolicy(), failing))
    await _until(lambda: bool(failing.calls), "the first process calling the department")
    waiter = asyncio.create_task(second.fetch(SOURCE, QUERY, [LI], CachePolicy(), working))
    await _waiting(redis_client, second)
    failing.gate.set()

    with pytest.raises(SourceUnavailable):
        await holder
    async with asyncio.timeout(LONG_LEASE / 2):  # the failed holder released its lease: no waiting it out
        found = await waiter
    assert found[LI].records == ({"SFZH": LI, "XM": "Li Hua"},)
    assert working.calls == [[LI]]
    assert second.stats.coalesced_remote == 0


async def test_a_holder_that_never_answers_is_taken_over_when_its_lease_expires(
    redis_cache: MakeCache, redis_client: redis.Redis, department: MakeDepartment
) -> None:
    first, second = redis_cache(lease=0.3), redis_cache(lease=0.3)
    stuck, working = department(_people()), department(_people())
    stuck.gate = asyncio.Event()  # never set: a process that hangs, or died holding the lease

    holder = asyncio.create_task(first.fetch(SOURCE, QUERY, [LI, WANG], CachePolicy(), stuck))
    await _until(lambda: bool(stuck.calls), "the first process calling the department")
    found = await second.fetch(SOURCE, QUERY, [LI], CachePolicy(), working)

    assert found[LI].records == ({"SFZH": LI, "XM": "Li Hua"},)
    assert working.calls == [[LI]]
    assert not holder.done()
    holder.cancel()


async def test_redis_failing_while_waiting_for_another_process_still_answers(
    redis_url: str, redis_cache: MakeCache, redis_client: redis.Redis, department: MakeDepartment
) -> None:
    stuck, working = department(_people()), department(_people())
    stuck.gate = asyncio.Event()
    first = redis_cache(lease=LONG_LEASE)
    holder = asyncio.create_task(first.fetch(SOURCE, QUERY, [LI], CachePolicy(), stuck))
    await _until(lambda: bool(stuck.calls), "the first process calling the department")

    parts = urlsplit(redis_url)
    async with FaultProxy(parts.port or 6379) as proxy:  # the second process reaches Redis through the proxy
        second = redis_cache(url=parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(), lease=LONG_LEASE)
        waiter = asyncio.create_task(second.fetch(SOURCE, QUERY, [LI], CachePolicy(), working))
        await _waiting(redis_client, second)
    # the proxy is gone: Redis is down for the second process, which holds no lease and has no answer

    async with asyncio.timeout(LONG_LEASE / 2):
        found = await waiter
    assert found[LI].records == ({"SFZH": LI, "XM": "Li Hua"},)
    assert working.calls == [[LI]]
    assert second.stats.errors >= 1
    assert not holder.done()
    holder.cancel()


async def test_keys_answered_by_another_process_s_load_or_one_in_this_process_are_counted(
    redis_cache: MakeCache, redis_client: redis.Redis, redis_namespace: str, department: MakeDepartment
) -> None:
    """Each process's metrics (/metrics) count the keys its fetches joined a load for: one of its own (local), or
    the other process's (remote)."""
    first, second = redis_cache(), redis_cache()
    first_metrics, second_metrics = GatewayMetrics(), GatewayMetrics()
    first.on_coalesced, second.on_coalesced = first_metrics.cache_coalesced, second_metrics.cache_coalesced
    dept = department(_people())

    await _two_processes_loading(first, second, dept, redis_client, redis_namespace)

    assert dept.calls == [[LI, WANG]]
    counted = samples(second_metrics.exposition().decode(), "onewindow_cache_coalesced_total")
    assert counted == {
        (("load", "local"), ("source", SOURCE)): 8.0,  # four fetches joined its own wait, for two keys
        (("load", "remote"), ("source", SOURCE)): 2.0,  # the wait itself, answered by the first process's load
    }
    counted = samples(first_metrics.exposition().decode(), "onewindow_cache_coalesced_total")
    assert counted == {(("load", "local"), ("source", SOURCE)): 8.0}
    assert (second.stats.coalesced, second.stats.coalesced_remote) == (8, 2)  # the same as the stats say
