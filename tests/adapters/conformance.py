"""The conformance suite every adapter passes: subclass :class:`AdapterConformance` and supply fixtures.

A third-party adapter reuses it the same way::

    from tests.adapters.conformance import AdapterConformance

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
    an opened-or-not adapter for the same configuration whose department is not listening (connection refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adapters.base import Adapter, Record
from gateway.errors import SourceError, SourceUnavailable


def _at(record: Record, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value[part]
    return value


async def _open_and_fetch(adapter: Adapter, query: str, key: str) -> dict[str, list[Record]]:
    await adapter.open()
    return await adapter.fetch(query, [key])


class AdapterConformance:
    """Behaviour the source layer relies on, whatever the protocol."""

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

    async def test_aclose_can_be_called_twice(self, adapter: Adapter) -> None:
        await adapter.aclose()
        await adapter.aclose()
