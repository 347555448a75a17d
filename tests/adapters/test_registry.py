"""Adapter kinds: built-ins imported lazily, third-party kinds from installed packages, no silent overrides."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.registry import available_kinds, get_adapter_class, load_entry_points, register_adapter
from adapters.rest import RestAdapter
from gateway.config import parse_config
from gateway.errors import ConfigError


def test_built_in_kinds_resolve_to_their_classes() -> None:
    assert get_adapter_class("rest") is RestAdapter
    assert {"soap", "rest", "sql"} <= set(available_kinds())


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"known kinds: .*rest"):
        get_adapter_class("carrier_pigeon")


def test_replacing_a_kind_needs_clobber() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_adapter("rest", "somewhere.else:Adapter")
    register_adapter("rest", "adapters.rest:RestAdapter")  # the same target again is fine
    register_adapter("rest", RestAdapter, clobber=True)
    assert get_adapter_class("rest") is RestAdapter


def test_missing_module_is_reported_with_its_name() -> None:
    register_adapter("mainframe", "onewindow_mainframe_driver:MainframeAdapter")
    with pytest.raises(ImportError, match="onewindow_mainframe_driver"):
        get_adapter_class("mainframe")


@pytest.fixture
def installed_package(tmp_path: Path) -> Iterator[str]:
    """A real distribution on sys.path declaring an adapter in the onewindow.adapters entry-point group."""
    (tmp_path / "onewindow_parcel.py").write_text(
        textwrap.dedent(
            """
            from adapters.base import Adapter

            class ParcelAdapter(Adapter):
                async def fetch(self, query, keys):
                    return {}

                async def aclose(self):
                    pass
            """
        ),
        encoding="utf-8",
    )
    dist = tmp_path / "onewindow_parcel-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: onewindow-parcel\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[onewindow.adapters]\nparcel_registry = onewindow_parcel:ParcelAdapter\n", encoding="utf-8"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield "parcel_registry"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("onewindow_parcel", None)


def test_third_party_kind_from_an_installed_package(installed_package: str) -> None:
    load_entry_points(again=True)
    cls = get_adapter_class(installed_package)
    assert cls.__name__ == "ParcelAdapter"
    config = parse_config(
        {
            "sources": {
                "parcels": {
                    "kind": installed_package,
                    "department": "Land registry",
                    "queries": {"owner": {}},
                    "provides": {"Person.name": {"value": "owner_name"}},
                }
            }
        },
        {},
    )
    assert config.sources["parcels"].kind == installed_package


def test_a_kind_that_is_not_an_adapter_is_a_config_error(tmp_path: Path) -> None:
    register_adapter("not_an_adapter", "json:JSONDecoder", clobber=True)
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "sources": {
                    "x": {
                        "kind": "not_an_adapter",
                        "department": "d",
                        "queries": {"q": {}},
                        "provides": {"Person.name": {"value": "n"}},
                    }
                }
            },
            {},
        )
    assert info.value.path == "sources.x.kind"
    assert "not an Adapter" in str(info.value)
