from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from cache import CachedEntry, CodecError, EntryCodec, dumps_value, loads_value
from gateway.config import CacheConfig
from gateway.errors import ConfigError

ID_NUMBER = "110101199003074518"
AT = dt.datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=dt.UTC)


def _record() -> dict[str, object]:
    return {
        "SFZH": ID_NUMBER,
        "fee": Decimal("12.50"),
        "tiny": Decimal("1E-7"),
        "born": dt.date(1990, 3, 7),
        "issued": dt.datetime(2024, 6, 1, 8, 0, 0, 250000, tzinfo=ZoneInfo("Asia/Shanghai")),
        "recorded": dt.datetime(2024, 6, 1, 8, 0),
        "opens": dt.time(9, 30),
        "note": None,
        "count": 3,
        "ratio": 0.25,
        "active": True,
        "history": [{"year": 2020, "amount": Decimal("-0.00")}, [dt.date(2021, 1, 1), None]],
        "$weird": {"$date": "not a tag here"},
    }


def test_values_round_trip_with_their_exact_types() -> None:
    record = _record()
    back = loads_value(dumps_value(record))

    assert back == record
    assert type(back["fee"]) is Decimal
    assert str(back["fee"]) == "12.50"
    assert str(back["tiny"]) == "1E-7"
    assert str(back["history"][0]["amount"]) == "-0.00"
    assert type(back["born"]) is dt.date
    assert back["issued"].utcoffset() == dt.timedelta(hours=8)
    assert back["recorded"].tzinfo is None
    assert type(back["active"]) is bool
    assert back["$weird"] == {"$date": "not a tag here"}


def test_entries_round_trip() -> None:
    codec = EntryCodec()
    entry = CachedEntry(records=(_record(), {"n": 2}), fetched_at=AT)
    assert codec.decode(codec.encode(entry, key="k"), key="k") == entry
    missing = CachedEntry.not_found(AT)
    assert codec.decode(codec.encode(missing, key="k"), key="k") == missing


def test_unencrypted_values_are_plain_json() -> None:
    text = EntryCodec().encode(CachedEntry(records=({"fee": Decimal("12.50")},), fetched_at=AT), key="k")
    assert json.loads(text)["records"] == [{"fee": {"$decimal": "12.50"}}]


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", {1: "int key"}, object()])
def test_what_json_cannot_carry_exactly_is_refused(value: object) -> None:
    with pytest.raises(CodecError):
        EntryCodec().encode(CachedEntry(records=({"v": value},), fetched_at=AT), key="k")


def test_encrypted_values_hide_the_record() -> None:
    codec = EntryCodec(encryption_key=bytes(range(32)))
    entry = CachedEntry(records=(_record(),), fetched_at=AT)
    text = codec.encode(entry, key="k")

    assert text.startswith("aesgcm:")
    assert ID_NUMBER not in text
    assert ID_NUMBER.encode() not in base64.b64decode(text.removeprefix("aesgcm:"))
    assert codec.decode(text, key="k") == entry


def _flip_one_byte(text: str) -> str:
    blob = bytearray(base64.b64decode(text.removeprefix("aesgcm:")))
    blob[-5] ^= 0x01
    return "aesgcm:" + base64.b64encode(bytes(blob)).decode()


def test_an_encrypted_value_that_does_not_open_is_a_logged_miss(caplog: pytest.LogCaptureFixture) -> None:
    codec = EntryCodec(encryption_key=bytes(range(32)))
    text = codec.encode(CachedEntry(records=({"SFZH": ID_NUMBER},), fetched_at=AT), key="k")

    with caplog.at_level(logging.WARNING, logger="onewindow.cache"):
        assert codec.decode(_flip_one_byte(text), key="k") is None  # tampered
        assert EntryCodec(encryption_key=bytes(32)).decode(text, key="k") is None  # another key
        assert codec.decode(text, key="other") is None  # copied under another cache key
        assert codec.decode("aesgcm:%%%", key="k") is None  # not even base64
        assert EntryCodec().decode(text, key="k") is None  # this process has no key
        assert codec.decode(EntryCodec().encode(CachedEntry.not_found(AT), key="k"), key="k") is None  # plaintext
    assert len(caplog.records) == 6
    assert all(ID_NUMBER not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "raw", ["", "not json", "[]", '{"v": 99}', '{"v": 1, "at": "x", "found": true, "records": []}']
)
def test_garbage_is_a_miss(raw: str) -> None:
    assert EntryCodec().decode(raw, key="k") is None


@pytest.mark.parametrize(("key", "reason"), [("%%%", "base64"), (base64.b64encode(bytes(16)).decode(), "32 bytes")])
def test_a_bad_encryption_key_is_a_start_up_error(key: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        EntryCodec.from_config(CacheConfig(encryption_key=key))
    assert caught.value.path == "cache.encryption_key"
