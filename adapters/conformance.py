"""The adapter kit's conformance suite: subclass :class:`AdapterConformance` in a test module and supply fixtures.

OneWindow's own REST, SOAP and SQL adapters pass it, and a third-party adapter proves itself the same way, in its
own package's tests (this module is the only one of OneWindow's that imports pytest; import it from tests only)::

    from adapters.conformance import AdapterConformance

    class TestParcelAdapter(AdapterConformance):
        @pytest.fixture
        async def adapter(self, parcel_server): ...

Fixtures a subclass supplies:

``adapter``
    an opened adapter (async, yields it and closes it) against a real running department server;
``query``
    the name of a query that returns at most one record per key;
``known_keys``
    at least three keys the department holds;
``unknown_key``
    a well-formed key it does not hold;
``key_path``
    the dotted path, in a record of ``query``, of the key the record belongs to;
``unreachable_adapter``
    an opened-or-not adapter for the same configuration whose department is not listening (connection refused);
``slow_adapter``
    an opened adapter whose department answers ``query`` for ``slow_key`` slower than the source's ``timeout``
    (a slow endpoint, a server that accepts and says nothing, a slow statement or a locked database).

Fixtures with a default a subclass may override:

``slow_key``
    the key ``slow_adapter`` is slow to answer (the first of ``known_keys``).

What is checked: a known key's record under that key; an unknown key absent, not an error; a batch answering each
key as single calls do; connection refused as ``SourceUnavailable``; a slow answer as ``SourceTimeout``; every
error naming the source and never carrying the key asked for; ``probe()`` describing a reachable department in a
string; ``aclose()`` twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adapters.base import Adapter, Record
from gateway.errors import SourceError, SourceTimeout, SourceUnavailable

__all__ = ["AdapterConformance"]


def _at(record: Record, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value[part]
    return value


async def _open_and_fetch(adapter: Adapter, query: str, key: str) -> dict[str, list[Record]]:
    await adapter.open()
    return await adapter.fetch(query, [key])


def _carries(error: SourceError, key: str) -> bool:
    """Whether ``key`` is anywhere in what an error shows: its message, its reason or its extensions."""
    shown = [str(error), error.reason, *(str(value) for value in error.extensions.values())]
    return any(key in text for text in shown)


class AdapterConformance:
    """Behaviour the source layer relies on, whatever the protocol."""

    @pytest.fixture
    def slow_key(self, known_keys: Sequence[str]) -> str:
        return known_keys[0]

    async def test_known_key_returns_one_record_under_that_key(
        self, adapter: Adapter, query: str, known_keys: Sequence[str], key_path: str
    ) -> None:
        key = known_keys[0]
        result = await adapter.fetch(query, [key])
        assert list(result) == [key]
        assert len(result[key]) == 1
        assert str(_at(result[key][0], key_path)) == key

    async def test_unknown_key_is_absent_not_an_error(self, adapter: Adapter, query: str, unknown_key: str) -> None:
        assert await adapter.fetch(query, [unknown_key]) == {}

    async def test_batch_answers_each_key_as_single_calls_do(
        self, adapter: Adapter, query: str, known_keys: Sequence[str], unknown_key: str
    ) -> None:
        keys = [*known_keys, unknown_key]
        singles: dict[str, list[Record]] = {}
        for key in keys:
            singles.update(await adapter.fetch(query, [key]))
        if adapter.capabilities(query).batch:
            together = await adapter.fetch(query, keys)
            assert together == singles
        assert set(singles) == set(known_keys)

    async def test_unreachable_department_raises_source_unavailable(
        self, unreachable_adapter: Adapter, query: str, known_keys: Sequence[str]
    ) -> None:
        with pytest.raises(SourceUnavailable) as info:
            await _open_and_fetch(unreachable_adapter, query, known_keys[0])
        assert info.value.source == unreachable_adapter.name

    async def test_errors_name_the_source(self, unreachable_adapter: Adapter, query: str) -> None:
        with pytest.raises(SourceError) as info:
            await _open_and_fetch(unreachable_adapter, query, "irrelevant")
        assert info.value.extensions["source"] == unreachable_adapter.name
        assert info.value.extensions["code"].startswith("SOURCE_")

    async def test_an_unreachable_departments_error_never_carries_the_key(
        self, unreachable_adapter: Adapter, query: str, known_keys: Sequence[str]
    ) -> None:
        with pytest.raises(SourceError) as info:
            await _open_and_fetch(unreachable_adapter, query, known_keys[0])
        assert not _carries(info.value, known_keys[0])

    async def test_an_answer_slower_than_the_timeout_is_a_source_timeout(
        self, slow_adapter: Adapter, query: str, slow_key: str
    ) -> None:
        with pytest.raises(SourceTimeout) as info:
            await slow_adapter.fetch(query, [slow_key])
        assert info.value.source == slow_adapter.name
        assert info.value.extensions == {"code": "SOURCE_TIMEOUT", "source": slow_adapter.name}
        assert not _carries(info.value, slow_key)

    async def test_probe_describes_a_reachable_department(self, adapter: Adapter) -> None:
        described = await adapter.probe()
        assert isinstance(described, str)
        assert described.strip()

    async def test_aclose_can_be_called_twice(self, adapter: Adapter) -> None:
        await adapter.aclose()
        await adapter.aclose()
