"""The demo configuration as the data-plane tests use it (see :mod:`demo.variants`), loaded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demo.variants import DEMO_CONFIG, demo_yaml
from gateway.config import GatewayConfig, load_config

__all__ = ["DEMO_CONFIG", "demo_config", "demo_yaml"]


def demo_config(variables: Mapping[str, str], tmp_path: Path, **options: Any) -> GatewayConfig:
    """The edited demo configuration, loaded with ``variables`` (see :func:`demo.variants.demo_yaml`)."""
    return load_config(demo_yaml(tmp_path, **options), variables=variables)
