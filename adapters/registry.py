"""Adapter kinds by name: built-in ones imported lazily, third-party ones from an entry-point group.

A source's ``kind: soap`` is looked up here. A kind maps to a ``"module:Class"`` string that is imported only when
a source of that kind is configured, so a missing optional driver is reported with an install hint instead of
breaking every start-up. A third-party package adds kinds through the ``onewindow.adapters`` entry-point group::

    [project.entry-points."onewindow.adapters"]
    ftp_registry = "onewindow_ftp:FtpAdapter"

Registering a kind that already exists with another target is refused unless ``clobber=True``.

    >>> get_adapter_class("rest").__name__
    'RestAdapter'
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from adapters.base import Adapter

__all__ = ["ENTRY_POINT_GROUP", "available_kinds", "get_adapter_class", "load_entry_points", "register_adapter"]

ENTRY_POINT_GROUP = "onewindow.adapters"

_registry: dict[str, str | type[Adapter]] = {
    "soap": "adapters.soap:SoapAdapter",
    "rest": "adapters.rest:RestAdapter",
    "sql": "adapters.sql:SqlAdapter",
}

# Third-party modules an adapter needs, and how to install them.
_INSTALL_HINTS = {
    "asyncpg": "pip install 'onewindow[postgres]'",
    "aiomysql": "pip install 'onewindow[mysql]'",
    "pymysql": "pip install 'onewindow[mysql]'",
    "redis": "pip install 'onewindow[redis]'",
}

_entry_points_loaded = False


def register_adapter(kind: str, target: str | type[Adapter], *, clobber: bool = False) -> None:
    """Make ``kind`` available. ``target`` is an :class:`Adapter` subclass or a lazy ``"module:Class"``."""
    current = _registry.get(kind)
    if current is not None and _target(current) != _target(target) and not clobber:
        raise ValueError(f"adapter kind {kind!r} is already registered as {current!r}; pass clobber=True to replace")
    _registry[kind] = target


def _target(value: str | type[Adapter]) -> str:
    return value if isinstance(value, str) else f"{value.__module__}:{value.__qualname__}"


def load_entry_points(*, again: bool = False) -> None:
    """Register the kinds installed packages declare; once per process unless ``again`` (after an install)."""
    global _entry_points_loaded
    if _entry_points_loaded and not again:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        register_adapter(ep.name, ep.value)


def available_kinds() -> list[str]:
    load_entry_points()
    return sorted(_registry)


def get_adapter_class(kind: str) -> type[Adapter]:
    """The adapter class for ``kind``; ``KeyError`` for an unknown kind, ``ImportError`` with a hint for a missing
    driver."""
    load_entry_points()
    try:
        target = _registry[kind]
    except KeyError:
        raise KeyError(f"unknown adapter kind {kind!r}; known kinds: {', '.join(sorted(_registry))}") from None
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = _INSTALL_HINTS.get((exc.name or "").split(".")[0])
        raise ImportError(
            f"adapter kind {kind!r} needs module {exc.name!r}" + (f"; install it with: {hint}" if hint else "")
        ) from exc
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter subclass")
    _registry[kind] = cls
    return cls
