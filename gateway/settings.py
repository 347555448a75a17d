"""Process settings from the environment, under the ``ONEWINDOW_`` prefix.

The configuration file says what the gateway federates; these say how this process runs it::

    ONEWINDOW_CONFIG=/etc/onewindow/onewindow.yaml ONEWINDOW_PORT=8080 onewindow serve
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseSettings):
    """``ONEWINDOW_CONFIG``, ``ONEWINDOW_HOST``, ``ONEWINDOW_PORT``, ``ONEWINDOW_DEBUG``, ``ONEWINDOW_LOG_LEVEL``,
    ``ONEWINDOW_LOG_FORMAT`` (``text`` or ``json``: see :mod:`gateway.logs`), ``ONEWINDOW_ACCESS_LOG``."""

    model_config = SettingsConfigDict(env_prefix="ONEWINDOW_", extra="ignore")

    config: Path | None = None
    host: str | None = None
    port: int | None = None
    debug: bool = False
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
