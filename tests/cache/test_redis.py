"""The record cache on the real Redis: what is stored, and what several gateway processes sharing it see."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as redis

from cache import RecordCache
from gateway.config import CacheConfig, CachePolicy
from gateway.errors import ConfigError
from tests.cache.conftest import Department

SOURCE, QUERY = "civil_affairs", "marriage"
LI, WANG = "110101199003074518", "310104198512301234"

MakeCache = Callable[..., RecordCache]
MakeDepartment = Callable[..., Department]


def _people() -> dict[str, list[dict[str, Any]]]:
    return {LI: [{"SFZH": LI, "XM": "Li Hua"}], WANG: [{"SFZH": WANG, "XM": "Wang Fang"}]}


async def _stored(client: redis.Redis, namespace: str) -> dict[bytes, Any]:
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
    return dict(zip(keys, await client.mget(keys), strict=True)) if keys else {}


async def test_encrypted_entries_hold_no_id_number_in_keys_or_values(
    redis_cache: MakeCache,
    redis_client: redis.Redis,
    redis_namespace: str,
    department: MakeDepartment,
    encryption_key: str,
) -> None:
    cache = redis_cache(encryption_key=encryption_key)
    await cache.fetch(SOURCE, QUERY, [LI, WANG, "440305197707075566"], CachePolicy(), department(_people()))

    stored = await _stored(redis_client, redis_namespace)
    assert len(stored) == 3
    for key, value in stored.items():
        assert key.startswith(f"{redis_namespace}:civil_affairs:marriage:".encode())
        for number in (LI, WANG, "440305197707075566"):
            assert number.encode() not in key
            assert number.encode() not in value
        assert value.startswith(b"aesgcm:")


async def test_unencrypted_values_are_json_not_pickle(
    redis_cache: MakeCache, redis_client: redis.Redis, redis_namespace: str, department: MakeDepartment
) -> None:
    cache = redis_cache()
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), department(_people()))

    (value,) = (await _stored(redis_client, redis_namespace)).values()
    assert not value.startswith(b"\x80")  # pickle's protocol marker
    assert json.loads(value)["records"] == [{"SFZH": LI, "XM": "Li Hua"}]


async def test_entries_expire_in_redis_after_the_longest_stale_window(
    redis_cache: MakeCache, redis_client: redis.Redis, redis_namespace: str, department: MakeDepartment
) -> None:
    cache = redis_cache()
    await cache.fetch(
        SOURCE, QUERY, [LI, "unknown"], CachePolicy(ttl=60, negative_ttl=10, stale_if_error=30), department(_people())
    )

    found, missing = (await _stored(redis_client, redis_namespace)).keys()
    ttls = sorted([await redis_client.pttl(found), await redis_client.pttl(missing)])
    assert 39_000 < ttls[0] <= 40_000
    assert 89_000 < ttls[1] <= 90_000


async def test_a_stale_value_survives_in_redis_to_be_served(redis_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = redis_cache(), department(_people())
    policy = CachePolicy(ttl=0.2, stale_while_revalidate=5)
    await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    await asyncio.sleep(0.3)

    found = await cache.fetch(SOURCE, QUERY, [LI], policy, dept)
    assert found[LI].stale
    assert found[LI].records == ({"SFZH": LI, "XM": "Li Hua"},)


async def test_tampered_ciphertext_is_a_miss(
    redis_cache: MakeCache,
    redis_client: redis.Redis,
    redis_namespace: str,
    department: MakeDepartment,
    encryption_key: str,
) -> None:
    cache, dept = redis_cache(encryption_key=encryption_key), department(_people())
    await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    ((key, value),) = (await _stored(redis_client, redis_namespace)).items()
    blob = bytearray(base64.b64decode(value.removeprefix(b"aesgcm:")))
    blob[20] ^= 0xFF
    await redis_client.set(key, b"aesgcm:" + base64.b64encode(bytes(blob)), keepttl=True)

    found = await cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)

    assert found[LI].records == ({"SFZH": LI, "XM": "Li Hua"},)
    assert len(dept.calls) == 2


async def test_gateway_processes_sharing_redis_share_hits_and_invalidations(
    redis_cache: MakeCache, department: MakeDepartment, encryption_key: str
) -> None:
    one, two = redis_cache(encryption_key=encryption_key), redis_cache(encryption_key=encryption_key)
    dept = department(_people())

    await one.fetch(SOURCE, QUERY, [LI, WANG], CachePolicy(), dept)
    await one.fetch(SOURCE, "household", [LI], CachePolicy(), dept)
    through_two = await two.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    assert through_two[LI].records == ({"SFZH": LI, "XM": "Li Hua"},)
    assert len(dept.calls) == 2
    assert two.stats.hits == 1

    assert await two.invalidate(SOURCE, LI) == 2
    await one.fetch(SOURCE, QUERY, [LI, WANG], CachePolicy(), dept)
    assert dept.calls[-1] == [LI]

    assert await one.invalidate(SOURCE) == 2
    await two.fetch(SOURCE, QUERY, [WANG], CachePolicy(), dept)
    assert dept.calls[-1] == [WANG]


async def test_a_process_with_another_secret_shares_nothing(redis_cache: MakeCache, department: MakeDepartment) -> None:
    one, other = redis_cache(), redis_cache(key_secret="another-secret-entirely-0123")
    dept = department(_people())
    await one.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    await other.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept)
    assert len(dept.calls) == 2


async def test_single_flight_holds_on_redis(redis_cache: MakeCache, department: MakeDepartment) -> None:
    cache, dept = redis_cache(), department(_people(), delay=0.05)
    results = await asyncio.gather(*(cache.fetch(SOURCE, QUERY, [LI], CachePolicy(), dept) for _ in range(100)))
    assert dept.calls == [[LI]]
    assert all(r[LI].records for r in results)


def test_redis_without_a_key_secret_is_a_start_up_error(redis_url: str) -> None:
    with pytest.raises(ConfigError, match=r"^cache\.key_secret: .*same secret") as caught:
        RecordCache(CacheConfig(url=redis_url))
    assert caught.value.path == "cache.key_secret"
