"""Durations, keys and the strict base model shared by every configuration section (the gateway's and auth's).

>>> parse_duration("500ms"), parse_duration("183d")
(0.5, 15811200.0)
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

__all__ = [
    "MIN_KEY_BYTES",
    "DatabaseUrl",
    "Duration",
    "DurationOrZero",
    "KeySecret",
    "Strict",
    "parse_duration",
    "parse_duration_or_zero",
]

MIN_KEY_BYTES = 32
"""The shortest secret that may key an HMAC (session tokens, the audit seal): 256 bits."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration_or_zero(value: Any) -> float:
    """Like :func:`parse_duration`, but ``0`` (off) is allowed."""
    if value in (0, "0", "0s", 0.0):
        return 0.0
    return parse_duration(value)


def parse_duration(value: Any) -> float:
    """Seconds from ``2``, ``2.5``, ``"500ms"``, ``"2s"``, ``"1m"``, ``"12h"``, ``"183d"``.

    >>> parse_duration("500ms")
    0.5
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '2s' or '500ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use e.g. '2s', '500ms', '1m')")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
DurationOrZero = Annotated[float, BeforeValidator(parse_duration_or_zero)]


class Strict(BaseModel):
    """A configuration section: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(value)
        dialect = url.get_dialect()
    except NoSuchModuleError:  # an ArgumentError too: first
        raise ValueError(f"no database driver {make_url(value).drivername!r}") from None
    except ArgumentError:
        raise ValueError("not a SQLAlchemy URL, e.g. postgresql+asyncpg://user:password@host/db") from None
    if not dialect.is_async:
        raise ValueError(
            f"{url.drivername!r} is not an async driver: use postgresql+asyncpg, mysql+aiomysql or sqlite+aiosqlite"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ValueError(f"the driver of {url.drivername!r} is not installed ({exc})") from None
    return value


DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
"""A SQLAlchemy URL with an async driver (``sqlite+aiosqlite:///audit.db``, ``postgresql+asyncpg://user@host/db``),
checked when read: the driver must be known, async and installed, so a wrong one fails at start-up."""


def _long_enough(secret: SecretStr) -> SecretStr:
    if len(secret.get_secret_value().encode()) < MIN_KEY_BYTES:
        raise ValueError(f"a key needs at least {MIN_KEY_BYTES} bytes")
    return secret


KeySecret = Annotated[SecretStr, AfterValidator(_long_enough)]
"""A secret that keys an HMAC: at least :data:`MIN_KEY_BYTES` bytes, never shown (an error names its length
rule, not its value)."""
