"""The demo configuration as the data-plane tests use it: every field unconditional, read by a service principal.

Tests of departments, caching and resilience are about how data is fetched, not who may see it; the sharing
classes, purposes and masks of demo/onewindow.yaml are exercised by tests/auth. Here they are opened up, so a query
without a purpose sees every field::

    path = demo_yaml(tmp_path, replace={"ttl: 60s": "ttl: 1s"})
    config = load_config(path, variables=departments.variables)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.config import GatewayConfig, load_config

__all__ = ["DATA_PLANE_PRINCIPAL", "DEMO_CONFIG", "demo_config", "demo_yaml"]

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "demo" / "onewindow.yaml"

DATA_PLANE_PRINCIPAL = {
    "subject": "data-plane-tests",
    "kind": "service",
    "roles": ["case_handler", "cache_admin"],
}


def demo_yaml(
    tmp_path: Path,
    *,
    replace: Mapping[str, str] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    open_policy: bool = True,
    name: str = "onewindow.yaml",
) -> Path:
    """demo/onewindow.yaml with text ``replace``-d, then ``edit``-ed as data, written to ``tmp_path / name``."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    data = yaml.safe_load(text)
    if open_policy:
        data["auth"]["development_principal"] = dict(DATA_PLANE_PRINCIPAL)
        for source in data["sources"].values():
            for fmap in source["provides"].values():
                fmap["sharing"] = "unconditional"
    if edit is not None:
        edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def demo_config(variables: Mapping[str, str], tmp_path: Path, **options: Any) -> GatewayConfig:
    """The edited demo configuration, loaded with ``variables`` (see :func:`demo_yaml`)."""
    return load_config(demo_yaml(tmp_path, **options), variables=variables)
