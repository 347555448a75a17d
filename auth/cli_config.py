"""How ``onewindow keys`` and ``onewindow audit`` find their store: a section of ``auth:`` in the configuration file
named by ``--config`` or ``ONEWINDOW_CONFIG``.

>>> def audit_config(path):
...     try:
...         return auth_section(path, lambda auth: auth.audit, "the audit is turned off in {path}")
...     except ConfigUnusable as exc:
...         raise typer.Exit(2) from None   # after telling the operator str(exc)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from auth.config import AuthConfig

__all__ = ["ConfigOption", "ConfigUnusable", "auth_section"]

_S = TypeVar("_S")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="The YAML configuration file (or ONEWINDOW_CONFIG).")
]


class ConfigUnusable(Exception):
    """There is no store to work on; the message tells the operator why."""


def auth_section(path: Path | None, section: Callable[[AuthConfig], _S | None], off: str) -> _S:
    """The ``section`` of ``auth:`` in the configuration file ``path`` (``ONEWINDOW_CONFIG`` when ``None``).

    :class:`ConfigUnusable` when there is no file, the file is invalid, or the section is off (``off`` says so;
    ``{path}`` in it names the file).
    """
    path = path or GatewaySettings().config
    if path is None:
        raise ConfigUnusable("no configuration file: pass --config or set ONEWINDOW_CONFIG")
    try:
        auth = load_config(path).auth
    except ConfigError as exc:
        raise ConfigUnusable(f"configuration error in {path}: {exc}") from None
    found = section(auth)
    if found is None:
        raise ConfigUnusable(off.format(path=path))
    return found
