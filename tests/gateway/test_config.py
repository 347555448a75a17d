"""A wrong configuration fails at start-up with an error naming the source and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config, parse_config, parse_duration
from gateway.errors import ConfigError

BASE: dict[str, Any] = {
    "sources": {
        "civil_affairs": {
            "kind": "rest",
            "department": "Civil Affairs Bureau",
            "base_url": "http://127.0.0.1:9",
            "timeout": "2s",
            "queries": {"marriage": {"path": "/marriage/{key}"}},
            "provides": {
                "Person.maritalStatus": {
                    "value": "MarriageStatus",
                    "codes": {"10": "SINGLE", "20": "MARRIED"},
                    "sharing": "conditional",
                },
            },
        },
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    node = data
    parts = path.split("/")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return data


_DELETE = object()


def test_base_configuration_is_valid() -> None:
    config = parse_config(BASE, {})
    assert config.cache.responses.max_bytes == 32 * 1024 * 1024
    assert config.cache.lease == 5.0  # one attempt at the default department timeout
    source = config.sources["civil_affairs"]
    assert source.timeout == 2.0
    assert source.options == {"base_url": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("path", "value", "key", "says"),
    [
        ("sources/civil_affairs/timeout", "soon", "sources.civil_affairs.timeout", "not a duration"),
        ("sources/civil_affairs/kind", "carrier_pigeon", "sources.civil_affairs.kind", "unknown adapter kind"),
        ("sources/civil_affairs/base_url", _DELETE, "sources.civil_affairs.base_url", "Field required"),
        ("sources/civil_affairs/bogus_option", 1, "sources.civil_affairs.bogus_option", "Extra inputs"),
        ("sources/civil_affairs/department", _DELETE, "sources.civil_affairs.department", "Field required"),
        (
            "sources/civil_affairs/provides/Person.maritalStatus/codes",
            {"20": "MARIED"},
            "sources.civil_affairs.provides.Person.maritalStatus.codes",
            "'MARIED' (for code '20') is not a MaritalStatus",
        ),
        (
            "sources/civil_affairs/provides/Person.shoeSize",
            {"value": "X"},
            "sources.civil_affairs.provides.Person.shoeSize",
            "Person has no field 'shoeSize'",
        ),
        (
            "sources/civil_affairs/provides/Citizen.name",
            {"value": "X"},
            "sources.civil_affairs.provides.Citizen.name",
            "unknown entity 'Citizen'",
        ),
        (
            "sources/civil_affairs/provides/Person.maritalStatus/query",
            "divorce",
            "sources.civil_affairs.provides.Person.maritalStatus.query",
            "no query 'divorce'",
        ),
        (
            "sources/civil_affairs/provides/Person.maritalStatus/sharing",
            "sometimes",
            "sources.civil_affairs.provides.Person.maritalStatus.sharing",
            "Input should be",
        ),
        (
            "sources/civil_affairs/provides/Person.birthDate",
            {"value": "CSRQ", "date_format": "%Y%m%d", "codes": {"1": "x"}},
            "sources.civil_affairs.provides.Person.birthDate",
            "",
        ),
        (
            "sources/civil_affairs/provides/Person.socialInsurance",
            {"fields": {"insured": {"value": "flag"}, "colour": {"value": "c"}}},
            "sources.civil_affairs.provides.Person.socialInsurance.fields.colour",
            "unknown sub-field",
        ),
        (
            "sources/civil_affairs/provides/Person.name",
            {"value": "XM", "date_format": "%Y"},
            "sources.civil_affairs.provides.Person.name.date_format",
            "only date and datetime",
        ),
        ("sources/civil_affairs/queries", {}, "sources.civil_affairs.queries", "at least 1"),
        ("cache/responses/max_bytes", "a lot", "cache.responses.max_bytes", "could not parse"),
        ("cache/responses/max_entry_bytes", "-1 KiB", "cache.responses.max_entry_bytes", "could not parse"),
        ("cache/lease", "0s", "cache.lease", "must be positive"),
        ("cache/lease", "2m", "cache.lease", "less than or equal to 60"),
        ("auth/audit/url", "postgresql://onewindow@db/audit", "auth.audit.url", "'postgresql' is not an async driver"),
        ("auth/audit/url", "oracle+nosuch://db/audit", "auth.audit.url", "no database driver 'oracle+nosuch'"),
        ("auth/audit/url", "not a url", "auth.audit.url", "not a SQLAlchemy URL"),
    ],
)
def test_errors_name_source_and_key(path: str, value: Any, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_with(path, value), {})
    assert info.value.path.startswith(key), info.value
    assert says in str(info.value)


def test_environment_variables_are_interpolated_and_missing_ones_named() -> None:
    data = _with("sources/civil_affairs/base_url", "${CIVIL_URL}")
    assert parse_config(data, {"CIVIL_URL": "http://127.0.0.1:1"}).sources["civil_affairs"].options == {
        "base_url": "http://127.0.0.1:1"
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, {})
    assert info.value.path == "sources.civil_affairs.base_url"
    assert "CIVIL_URL" in str(info.value)
    defaulted = _with("sources/civil_affairs/base_url", "${CIVIL_URL:-http://127.0.0.1:2}")
    assert parse_config(defaulted, {}).sources["civil_affairs"].options["base_url"] == "http://127.0.0.1:2"


def test_files_that_are_not_yaml_or_missing_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), (3, 3.0), ("1.5", 1.5)])
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0s", "-1", "fast", True])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked through ConfigError above
        parse_duration(text)
