"""The whole-answer cache: keyed by the whole caller, valid only while the records it was built from are unchanged."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from auth.audit import AuditEntry
from auth.principal import Principal, PrincipalKind
from cache import RecordCache, Stamp
from cache.responses import CachedResponse, ResponseCache, stamps_of
from gateway.config import CachePolicy, ResponseCacheConfig
from gateway.metrics import GatewayMetrics
from tests.cache.conftest import Department

SOURCE, QUERY = "civil_affairs", "marriage"
LI, WANG = "110101199003074518", "310104198512301234"
CLERK = Principal(
    "wang.fang", PrincipalKind.CLERK, "cas", department="民政局", window="A-07", roles=frozenset({"case_handler"})
)

MakeCache = Callable[..., RecordCache]


async def _stamps(cache: RecordCache, *keys: str, policy: CachePolicy | None = None) -> list[Stamp]:
    """Stamps as a request reading ``keys`` from the cache gets them (the first read loads, the second is fresh)."""
    dept = Department({LI: [{"XM": "Li Hua"}], WANG: [{"XM": "Wang Fang"}]})
    await cache.fetch(SOURCE, QUERY, list(keys), policy or CachePolicy(), dept)
    found = await cache.fetch(SOURCE, QUERY, list(keys), policy or CachePolicy(), dept)
    stamps = [f.stamp for f in found.values()]
    assert all(s is not None for s in stamps)
    return [s for s in stamps if s is not None]


def _answer(stamps: list[Stamp], body: bytes = b'{"data":{"person":{"name":"Li Hua"}}}') -> CachedResponse:
    return CachedResponse(body, (("content-type", "application/json"),), tuple(stamps))


def test_the_key_holds_every_attribute_policy_reads_and_every_part() -> None:
    base = ResponseCache.key(CLERK, [b"POST", b"{}"])
    assert ResponseCache.key(dataclasses.replace(CLERK), [b"POST", b"{}"]) == base
    changed: dict[str, Any] = {
        "subject": "li.lei",
        "kind": PrincipalKind.OFFICER,
        "via": "oidc:city",
        "department": "教育委员会",
        "window": "B-01",
        "roles": frozenset(),
        "scopes": frozenset({"cache_admin"}),
        "id_number": LI,
    }
    keys = {
        ResponseCache.key(dataclasses.replace(CLERK, **{name: value}), [b"POST", b"{}"])
        for name, value in changed.items()
    }
    assert base not in keys
    assert len(keys) == len(changed)
    # parts are length-prefixed: moving a byte from one part to the next is another key
    assert ResponseCache.key(CLERK, [b"POST", b"{}"]) != ResponseCache.key(CLERK, [b"POST{", b"}"])


async def test_a_value_carries_the_stamp_of_its_stored_entry_and_a_stale_one_none(memory_cache: MakeCache) -> None:
    records = memory_cache()
    dept = Department({LI: [{"XM": "Li Hua"}]})
    policy = CachePolicy(ttl=0.1, stale_while_revalidate=60)
    loaded = (await records.fetch(SOURCE, QUERY, [LI], policy, dept))[LI]
    read = (await records.fetch(SOURCE, QUERY, [LI], policy, dept))[LI]
    await asyncio.sleep(0.15)
    stale = (await records.fetch(SOURCE, QUERY, [LI], policy, dept))[LI]

    assert loaded.stamp is not None
    assert read.stamp == loaded.stamp  # the same stored text
    assert loaded.stamp.fresh_until == pytest.approx(loaded.fetched_at.timestamp() + 0.1)
    assert stale.stale
    assert stale.stamp is None
    assert await records.unchanged([loaded.stamp])
    assert read == dataclasses.replace(read, stamp=None)  # the stamp is not part of the value


async def test_a_kept_answer_is_served_while_its_records_are_unchanged(memory_cache: MakeCache) -> None:
    records = memory_cache()
    metrics = GatewayMetrics()
    responses = ResponseCache(ResponseCacheConfig(), records, metrics=metrics)
    key = ResponseCache.key(CLERK, [b"body"])
    assert await responses.lookup(key) is None
    assert responses.store(key, _answer(await _stamps(records, LI)))

    hit = await responses.lookup(key)

    assert hit is not None
    assert hit.body.startswith(b'{"data"')
    assert (responses.stats.hits, responses.stats.misses) == (1, 1)
    assert b'onewindow_response_cache_lookups_total{result="hit"} 1.0' in metrics.exposition()


async def test_an_invalidated_record_ends_every_answer_built_from_it(memory_cache: MakeCache) -> None:
    records = memory_cache()
    responses = ResponseCache(ResponseCacheConfig(), records)
    both, wang_only = ResponseCache.key(CLERK, [b"both"]), ResponseCache.key(CLERK, [b"wang"])
    responses.store(both, _answer(await _stamps(records, LI, WANG)))
    responses.store(wang_only, _answer(await _stamps(records, WANG)))

    await records.invalidate(SOURCE, LI)

    assert await responses.lookup(both) is None
    assert responses.stats.changed == 1
    assert await responses.lookup(wang_only) is not None
    assert await responses.lookup(both) is None  # dropped once found changed
    assert responses.stats.misses == 1


async def test_a_refreshed_record_ends_the_answer(memory_cache: MakeCache) -> None:
    records = memory_cache()
    responses = ResponseCache(ResponseCacheConfig(), records)
    key = ResponseCache.key(CLERK, [b"body"])
    responses.store(key, _answer(await _stamps(records, LI)))
    # the department is asked again (the entry expired and was loaded anew): the stored text is another
    await records.invalidate(SOURCE, LI)
    await _stamps(records, LI)

    assert await responses.lookup(key) is None
    assert responses.stats.changed == 1


async def test_an_answer_ends_when_its_first_record_goes_stale(memory_cache: MakeCache) -> None:
    records = memory_cache()
    responses = ResponseCache(ResponseCacheConfig(), records)
    short = await _stamps(records, LI, policy=CachePolicy(ttl=0.2))
    key = ResponseCache.key(CLERK, [b"body"])
    assert responses.store(key, _answer(short))
    assert await responses.lookup(key) is not None

    await asyncio.sleep(0.25)

    assert await responses.lookup(key) is None
    assert responses.stats.expired == 1


async def test_what_is_not_kept(memory_cache: MakeCache) -> None:
    records = memory_cache()
    responses = ResponseCache(ResponseCacheConfig(max_entry_bytes=2048), records)
    stamps = await _stamps(records, LI)
    past = [dataclasses.replace(stamps[0], fresh_until=time.time() - 1)]

    assert not responses.store(b"no-records", _answer([]))  # nothing to tell when it goes out of date
    assert not responses.store(b"past", _answer(past))
    assert not responses.store(b"large", _answer(stamps, body=b"x" * 4096))
    assert len(responses) == 0


async def test_memory_is_bounded_least_recently_used_first(memory_cache: MakeCache) -> None:
    records = memory_cache()
    stamps = await _stamps(records, LI)
    size = _answer(stamps).size()
    responses = ResponseCache(ResponseCacheConfig(max_bytes=size * 3), records)
    for name in (b"a", b"b", b"c"):
        assert responses.store(name, _answer(stamps))
    assert await responses.lookup(b"a") is not None  # a is now the most recently used

    responses.store(b"d", _answer(stamps))

    assert len(responses) == 3
    assert await responses.lookup(b"b") is None
    assert await responses.lookup(b"a") is not None


def test_a_hit_audits_the_same_disclosures_under_its_own_request() -> None:
    entry = AuditEntry(
        at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
        request_id="first",
        subject="wang.fang",
        principal_kind="clerk",
        via="cas",
        department="民政局",
        window="A-07",
        client="10.0.0.7",
        entity="Person",
        applicant=LI,
        released=("name",),
        masked=(),
        refused=(),
        sources=("public_security",),
        purpose="BJ2026000001",
        outcome="released",
    )
    answer = dataclasses.replace(_answer([Stamp("k", "t", time.time() + 60)]), disclosures=(entry,))

    again = answer.disclosed_again(request_id="second", client="10.0.0.8")

    assert [(e.request_id, e.client) for e in again] == [("second", "10.0.0.8")]
    assert again[0].at > entry.at
    assert dataclasses.replace(again[0], at=entry.at, request_id="first", client="10.0.0.7") == entry


def test_one_record_read_by_several_fields_is_checked_once() -> None:
    a, b = Stamp("k1", "t1", 1.0), Stamp("k2", "t2", 2.0)
    assert stamps_of([a, b, a, dataclasses.replace(a)]) == (a, b)


@pytest.mark.redis
async def test_with_redis_an_invalidation_by_another_process_ends_the_answer(
    redis_cache: MakeCache,
) -> None:
    mine, theirs = redis_cache(), redis_cache()
    responses = ResponseCache(ResponseCacheConfig(), mine)
    key = ResponseCache.key(CLERK, [b"body"])
    assert responses.store(key, _answer(await _stamps(mine, LI)))
    assert await responses.lookup(key) is not None

    await theirs.invalidate(SOURCE, LI)

    assert await responses.lookup(key) is None
    assert responses.stats.changed == 1
