"""Variants of the demo configuration for tests and benchmarks that measure the data plane, not the policy.

Tests of departments, caching and resilience, and the benchmark's scenarios, are about how data is fetched, not
who may see it; the sharing classes, purposes and masks of ``demo/onewindow.yaml`` are exercised on their own.
:func:`demo_yaml` opens them up — every field unconditional, read by a service principal — so a query without a
purpose sees every field::

    path = demo_yaml(tmp_path, replace={"ttl: 60s": "ttl: 1s"})
    config = load_config(path, variables=departments.variables)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DATA_PLANE_PRINCIPAL", "DEMO_CONFIG", "DEMO_OPERATOR", "DEMO_OPERATOR_TOKEN", "demo_yaml"]

DEMO_CONFIG = Path(__file__).resolve().parent / "onewindow.yaml"

DEMO_OPERATOR_TOKEN = "demo-only-operator-token-not-for-production"
"""``http.operator_token`` in demo/onewindow.yaml unless ``ONEWINDOW_OPERATOR_TOKEN`` is set."""
DEMO_OPERATOR = {"Authorization": f"Bearer {DEMO_OPERATOR_TOKEN}"}
"""The headers that show the demo's ``/readyz`` in full, and its ``/metrics``."""

DATA_PLANE_PRINCIPAL = {
    "subject": "data-plane",
    "kind": "service",
    "roles": ["case_handler", "cache_admin"],
}


def demo_yaml(
    directory: Path,
    *,
    replace: Mapping[str, str] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    open_policy: bool = True,
    name: str = "onewindow.yaml",
) -> Path:
    """demo/onewindow.yaml with text ``replace``-d, then ``edit``-ed as data, written to ``directory / name``."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        if old not in text:
            raise ValueError(f"{old!r} is not in the demo configuration")
        text = text.replace(old, new)
    data = yaml.safe_load(text)
    if open_policy:
        data["auth"]["development_principal"] = dict(DATA_PLANE_PRINCIPAL)
        for source in data["sources"].values():
            for fmap in source["provides"].values():
                fmap["sharing"] = "unconditional"
    if edit is not None:
        edit(data)
    path = directory / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
