"""The record cache's behaviour with the memory backend; tests/cache/test_redis.py repeats what Redis changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from cache import RecordCache
from gateway.config import CacheConfig, CachePolicy
from gateway.errors import ConfigError, SourceFault, SourceUnavailable
from tests.cache.conftest import Department

SOURCE, QUERY = "civil_affairs", "marriage"
LI, WANG, ZHAO = "110101199003074518", "310104198512301234", "440305197707075566"

MakeCache = Callable[..., RecordCache]
MakeDepartment = Callable[..., Department]


def _people() -> dict[str, list[dict[str, Any]]]:
    return {LI: [{"XM": "Li Hua", "HYZK": "20"}], WANG: [{"XM": "Wang Fang", "HYZK": "10"}]}


async def _settle(cache: RecordCache) -> None:
    """Wait for the cache's background refreshes."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not cache._tasks:
            return
    raise AssertionError("background work did not finish")


async def test_a_miss_calls_the_department_and_a_hit_does_not(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people())

    first = await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    second = await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)

    assert first[LI].records == ({"XM": "Li Hua", "HYZK": "20"},)
    assert second[LI] == first[LI]
    assert not second[LI].stale
    assert dept.calls == [[LI]]
    assert (cache.stats.misses, cache.stats.hits, cache.stats.calls) == (1, 1, 1)


async def test_missing_keys_go_to_the_department_in_one_call(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people())
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)

    found = await cache.fetch(SOURCE, QUERY, [LI, WANG, ZHAO, WANG], CachePolicy(), dept)

    assert list(found) == [LI, WANG, ZHAO]
    assert dept.calls == [[LI], [WANG, ZHAO]]


async def test_an_answer_expires_after_its_ttl(memory_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=0.2)

    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    dept.records[LI] = [{"XM": "Li Hua", "HYZK": "30"}]
    await asyncio.sleep(0.1)
    assert (await cache.fetch(SOURCE, QUERY, [LI], policy, dept))[LI].records[0]["HYZK"] == "20"
    await asyncio.sleep(0.2)
    assert (await cache.fetch(SOURCE, QUERY, [LI], policy, dept))[LI].records[0]["HYZK"] == "30"
    assert len(dept.calls) == 2


async def test_the_configured_ttl_applies_when_the_source_sets_none(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(ttl=0.2), department(_people())
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    await asyncio.sleep(0.3)
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    assert len(dept.calls) == 2


async def test_not_found_is_cached_for_the_negative_ttl(memory_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=60, negative_ttl=0.2)

    first = await cache.fetch(SOURCE, QUERY, [ZHAO], policy, dept)
    second = await cache.fetch(SOURCE, QUERY, [ZHAO], policy, dept)
    assert first[ZHAO].records == ()
    assert second[ZHAO].records == ()
    assert len(dept.calls) == 1
    assert cache.stats.negative_hits == 1

    dept.records[ZHAO] = [{"XM": "Zhao Lei"}]  # registered since
    await asyncio.sleep(0.3)
    assert (await cache.fetch(SOURCE, QUERY, [ZHAO], policy, dept))[ZHAO].records == ({"XM": "Zhao Lei"},)
    assert len(dept.calls) == 2


async def test_stale_while_revalidate_serves_stale_and_refreshes_once(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people(), delay=0.05)
    policy = CachePolicy(ttl=0.2, stale_while_revalidate=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    dept.records[LI] = [{"XM": "Li Hua", "HYZK": "30"}]
    await asyncio.sleep(0.25)

    stale = await asyncio.gather(*(cache.fetch(SOURCE, QUERY, [LI], policy, dept) for _ in range(5)))

    assert all(f[LI].stale and f[LI].records[0]["HYZK"] == "20" for f in stale)
    assert stale[0][LI].age >= 0.2
    await _settle(cache)
    assert len(dept.calls) == 2  # the first load and one refresh
    fresh = await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    assert not fresh[LI].stale
    assert fresh[LI].records[0]["HYZK"] == "30"
    assert cache.stats.stale_hits == 5


async def test_a_failed_background_refresh_is_logged_not_raised(
    memory_cache: MakeCache, department: MakeDepartment, caplog: pytest.LogCaptureFixture
) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=0.2, stale_while_revalidate=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    await asyncio.sleep(0.25)
    dept.failure = SourceUnavailable(SOURCE, "connection refused")

    with caplog.at_level(logging.WARNING, logger="onewindow.cache"):
        found = await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
        await _settle(cache)

    assert found[LI].stale
    assert any("background refresh" in r.getMessage() for r in caplog.records)


async def test_stale_if_error_serves_stale_when_the_department_fails(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=0.2, stale_if_error=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    await asyncio.sleep(0.25)
    dept.failure = SourceUnavailable(SOURCE, "connection refused")

    found = await cache.fetch(SOURCE, QUERY, [LI], policy, dept)

    assert found[LI].stale
    assert found[LI].records == ({"XM": "Li Hua", "HYZK": "20"},)
    assert found[LI].age >= 0.2
    assert len(dept.calls) == 2  # it was asked first


async def test_stale_if_error_reraises_when_a_key_has_nothing_usable(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=0.2, stale_if_error=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    await asyncio.sleep(0.25)
    failure = dept.failure = SourceUnavailable(SOURCE, "connection refused")

    with pytest.raises(SourceUnavailable) as caught:
        await cache.fetch(SOURCE, QUERY, [LI, WANG], policy, dept)
    assert caught.value is failure


async def test_without_stale_if_error_a_failure_is_raised(memory_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=0.2, stale_if_error=0.1)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    await asyncio.sleep(0.4)  # past ttl + stale_if_error
    dept.failure = SourceUnavailable(SOURCE, "connection refused")

    with pytest.raises(SourceUnavailable):
        await cache.fetch(SOURCE, QUERY, [LI], policy, dept)


async def test_an_unexpected_error_is_not_hidden_by_stale_values(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache = memory_cache()

    async def broken(keys: Any) -> dict[str, Any]:
        raise RuntimeError("adapter bug")

    policy = CachePolicy(ttl=0.2, stale_if_error=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, department(_people()))
    await asyncio.sleep(0.25)
    with pytest.raises(RuntimeError, match="adapter bug"):
        await cache.fetch(SOURCE, QUERY, [LI], policy, broken)


async def test_never_cache_always_calls_and_stores_nothing(memory_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = memory_cache(), department(_people())

    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(never_cache=True), dept)
    found = await cache.fetch(SOURCE, QUERY, [LI, ZHAO], CachePolicy(never_cache=True), dept)
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)

    assert found[LI].records
    assert found[ZHAO].records == ()
    assert len(dept.calls) == 3


async def test_a_hundred_concurrent_fetches_of_one_key_make_one_call(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people(), delay=0.05)

    results = await asyncio.gather(*(cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept) for _ in range(100)))

    assert dept.calls == [[LI]]
    assert all(r[LI].records == ({"XM": "Li Hua", "HYZK": "20"},) for r in results)
    assert cache.stats.coalesced == 99


async def test_overlapping_fetches_call_only_for_keys_not_already_in_flight(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people(), delay=0.05)

    one, two = await asyncio.gather(
        cache.fetch(SOURCE, QUERY, [LI, WANG], CachePolicy(), dept),
        cache.fetch(SOURCE, QUERY, [WANG, ZHAO], CachePolicy(), dept),
    )

    assert dept.calls == [[LI, WANG], [ZHAO]]
    assert one[WANG] == two[WANG]
    assert two[ZHAO].records == ()


async def test_a_caller_giving_up_does_not_fail_the_others_waiting(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people(), delay=0.1)

    impatient = asyncio.create_task(cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept))
    await asyncio.sleep(0.01)
    patient = asyncio.create_task(cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept))
    await asyncio.sleep(0.01)
    impatient.cancel()

    assert (await patient)[LI].records
    assert impatient.cancelled()
    assert len(dept.calls) == 1


async def test_different_queries_and_sources_are_cached_apart(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people())
    for source, query in [(SOURCE, QUERY), (SOURCE, "household"), ("public_security", QUERY)]:
        await cache.fetch(source, query, [LI], CachePolicy(), dept)
    assert len(dept.calls) == 3


async def test_vary_by_caller_keeps_callers_apart(memory_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(vary_by_caller=True)

    await cache.fetch(SOURCE, QUERY, [LI], policy, dept, scope="alice")
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept, scope="alice")
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept, scope="bob")
    assert len(dept.calls) == 2

    with pytest.raises(ValueError, match="scope is required"):
        await cache.fetch(SOURCE, QUERY, [LI], policy, dept)


async def test_invalidate_drops_one_key_across_queries_or_a_whole_source(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people())
    for query in (QUERY, "household"):
        await cache.fetch(SOURCE, query, [LI, WANG], CachePolicy(), dept)
    await cache.fetch("public_security", QUERY, [LI], CachePolicy(), dept)

    assert await cache.invalidate(SOURCE, LI) == 2
    await cache.fetch(SOURCE, QUERY, [LI, WANG], CachePolicy(), dept)
    assert dept.calls[-1] == [LI]

    assert await cache.invalidate(SOURCE) == 3  # marriage: both; household: Wang
    assert await cache.invalidate(SOURCE) == 0
    await cache.fetch("public_security", QUERY, [LI], CachePolicy(), dept)
    assert len(dept.calls) == 4  # the other source kept its entry


async def test_a_record_json_cannot_carry_is_returned_but_not_cached(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department({LI: [{"photo": b"\x89PNG"}]})

    found = await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)

    assert found[LI].records == ({"photo": b"\x89PNG"},)
    assert len(dept.calls) == 2


async def test_aclose_cancels_a_refresh_still_running(memory_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = memory_cache(), department(_people())
    policy = CachePolicy(ttl=0.2, stale_while_revalidate=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    await asyncio.sleep(0.25)
    dept.delay = 30

    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    async with asyncio.timeout(1):
        await cache.aclose()
    assert not cache._tasks


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"url": "memcached://127.0.0.1"}, "cache.url"),
        ({"url": "redis://127.0.0.1:6379/zero", "key_secret": "a-secret-every-gateway-process-shares"}, "cache.url"),
        ({"url": "redis://127.0.0.1:6379/0"}, "cache.key_secret"),
        ({"encryption_key": "c2hvcnQ="}, "cache.encryption_key"),
    ],
)
def test_a_wrong_cache_configuration_is_a_start_up_error(config: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RecordCache(CacheConfig(**config))
    assert caught.value.path == path


async def test_an_unreachable_cache_is_a_miss_not_a_failure(department: MakeDepartment) -> None:
    dept = department(_people())
    config = CacheConfig(url="redis://127.0.0.1:1/0", key_secret="a-secret-every-gateway-process-shares")
    async with RecordCache(config) as cache:
        found = await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
        await _settle(cache)
    assert found[LI].records
    assert cache.stats.errors == 3  # the read, the lease and the write


async def test_a_fault_from_the_department_is_raised_to_every_waiter(
    memory_cache: MakeCache, department: MakeDepartment
) -> None:
    cache, dept = memory_cache(), department(_people(), delay=0.05)
    dept.failure = SourceFault(SOURCE, "soap:Server")

    results = await asyncio.gather(
        *(cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept) for _ in range(3)), return_exceptions=True
    )
    assert all(r is dept.failure for r in results)
    assert len(dept.calls) == 1
