from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from cache import CacheKeys
from gateway.config import CacheConfig
from gateway.errors import ConfigError

ID_NUMBER = "110101199003074518"
SECRET = "a-secret-every-gateway-process-shares"


def test_a_key_names_the_source_and_query_but_not_the_person() -> None:
    keys = CacheKeys.from_config(CacheConfig(key_secret=SECRET))
    key = keys.entry("civil_affairs", "marriage", ID_NUMBER)

    assert key.startswith("onewindow:civil_affairs:marriage:")
    assert ID_NUMBER not in key
    assert len(key.rsplit(":", 1)[1]) == 64  # hmac-sha256 hex


def test_processes_sharing_a_secret_build_the_same_keys() -> None:
    one = CacheKeys.from_config(CacheConfig(url="redis://127.0.0.1:6379/0", key_secret=SECRET))
    two = CacheKeys.from_config(CacheConfig(url="redis://127.0.0.1:6379/0", key_secret=SECRET))
    other = CacheKeys.from_config(CacheConfig(key_secret=SECRET + "-other"))

    assert one.entry("s", "q", ID_NUMBER) == two.entry("s", "q", ID_NUMBER)
    assert one.entry("s", "q", ID_NUMBER) != other.entry("s", "q", ID_NUMBER)


def test_a_memory_cache_without_secret_gets_its_own_random_one() -> None:
    one, two = CacheKeys.from_config(CacheConfig()), CacheKeys.from_config(CacheConfig())
    assert one.entry("s", "q", ID_NUMBER) != two.entry("s", "q", ID_NUMBER)


def test_a_shared_cache_without_secret_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match=r"cache\.key_secret") as caught:
        CacheKeys.from_config(CacheConfig(url="redis://127.0.0.1:6379/0"))
    assert caught.value.path == "cache.key_secret"


def test_a_short_secret_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        CacheKeys.from_config(CacheConfig(key_secret="short"))


def test_a_caller_scope_is_its_own_hashed_segment() -> None:
    keys = CacheKeys("ns", SECRET.encode())
    alice, bob = keys.entry("s", "q", ID_NUMBER, "alice@bureau"), keys.entry("s", "q", ID_NUMBER, "bob@bureau")

    assert alice != bob != keys.entry("s", "q", ID_NUMBER)
    assert "alice" not in alice
    assert alice.rsplit(":", 1)[1] == keys.entry("s", "q", ID_NUMBER).rsplit(":", 1)[1]


def test_source_patterns_find_a_key_across_queries_and_callers_and_nothing_else() -> None:
    keys = CacheKeys("ns", SECRET.encode())
    one_key = keys.source_pattern("civil_affairs", ID_NUMBER)
    whole_source = keys.source_pattern("civil_affairs")

    for key in (keys.entry("civil_affairs", "marriage", ID_NUMBER), keys.entry("civil_affairs", "x", ID_NUMBER, "c")):
        assert fnmatchcase(key, one_key)
        assert fnmatchcase(key, whole_source)
    assert not fnmatchcase(keys.entry("civil_affairs", "marriage", "other"), one_key)
    assert fnmatchcase(keys.entry("civil_affairs", "marriage", "other"), whole_source)
    assert not fnmatchcase(keys.entry("civil_affairs_archive", "marriage", ID_NUMBER), whole_source)


def test_names_with_separators_or_glob_characters_cannot_reach_other_sources() -> None:
    keys = CacheKeys("ns", SECRET.encode())
    tricky = keys.entry("civil:affairs*", "q", ID_NUMBER)

    assert tricky.startswith("ns:civil%3Aaffairs%2A:q:")
    assert not fnmatchcase(tricky, keys.source_pattern("civil"))
    assert fnmatchcase(tricky, keys.source_pattern("civil:affairs*"))
