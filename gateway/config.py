"""The gateway's configuration: one YAML file, validated at start-up.

A file names the department systems (*sources*) the gateway reads, how to reach each, the queries it may send
them and which unified fields each query's records provide::

    sources:
      civil_affairs:
        kind: soap
        department: Civil Affairs Bureau
        wsdl: ${CIVIL_AFFAIRS_WSDL}
        timeout: 2s
        queries:
          marriage: {operation: QueryMarriage, request: {IdCardNo: "{key}"}}
        provides:
          Person.maritalStatus:
            query: marriage
            value: MarriageStatus
            codes: {"10": SINGLE, "20": MARRIED, "30": DIVORCED, "40": WIDOWED}

Every error names the key at fault, e.g.
``sources.civil_affairs.provides.Person.maritalStatus.codes: 'MARIED' is not a MaritalStatus``.
Keys other than the common ones below (``kind``, ``department``, ``timeout``, ...) are the adapter's own
connection options, checked by the adapter kind's ``Options`` model; each query is checked by its ``Query`` model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "CacheConfig",
    "FieldMap",
    "GatewayConfig",
    "HttpConfig",
    "QueryConfig",
    "SearchConfig",
    "SharingClass",
    "SourceConfig",
    "interpolate",
    "load_config",
    "parse_config",
    "parse_duration",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_PORT = 8000

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: Any) -> float:
    """Seconds from ``2``, ``2.5``, ``"500ms"``, ``"2s"``, ``"1m"``.

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


class SharingClass(StrEnum):
    """Who may receive a field: anyone allowed the entity, only with an agreement and purpose, or nobody else."""

    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NOT_SHARED = "not_shared"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    """How one unified field is read from a query's record.

    ``value`` is a dotted path into the record (``Persons.Person.XM``); for an object field, ``fields`` maps each
    sub-field; for a reference, ``value`` is the referenced entity's key and ``kind`` (for an applicant) tells a
    person from a legal entity.
    """

    query: str | None = None
    value: str | None = None
    codes: dict[str, str] | None = None
    date_format: str | None = None
    fields: dict[str, FieldMap] | None = None
    kind: FieldMap | None = None
    sharing: SharingClass = SharingClass.UNCONDITIONAL


class QueryConfig(BaseModel):
    """A query the gateway may send a source. ``many``: a key has a list of records, not at most one.

    The remaining keys are the adapter's (a SOAP operation, a REST path, a SQL table), checked by its ``Query``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    many: bool = False


class SearchConfig(_Strict):
    """Listing an entity by filters (``cases(applicant:, status:)``): the query to run and the record paths."""

    query: str
    key: str
    filters: dict[str, str] = Field(default_factory=dict)


class SourceConfig(BaseModel):
    """One department system. Keys not named here are the adapter's connection options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str
    department: str
    timeout: Duration = DEFAULT_TIMEOUT
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1, le=1000)
    queries: dict[str, QueryConfig] = Field(min_length=1)
    provides: dict[str, FieldMap] = Field(min_length=1)
    search: dict[str, SearchConfig] = Field(default_factory=dict)

    @property
    def options(self) -> dict[str, Any]:
        """The adapter's own keys."""
        return dict(self.model_extra or {})


class CacheConfig(_Strict):
    url: str = "memory://"
    ttl: Duration = 60.0


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    graphiql: bool = False
    debug: bool = False


class GatewayConfig(_Strict):
    """The whole configuration file."""

    http: HttpConfig = Field(default_factory=HttpConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    sources: dict[str, SourceConfig] = Field(min_length=1)


def interpolate(value: Any, variables: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string, from ``variables``."""
    if isinstance(value, str):

        def _sub(match: re.Match[str]) -> str:
            name, default = match[1], match[2]
            if name in variables:
                return variables[name]
            if default is not None:
                return default
            raise ConfigError(path, f"environment variable ${{{name}}} is not set")

        return _VARIABLE.sub(_sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, variables, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(data: Any, variables: Mapping[str, str] | None = None) -> GatewayConfig:
    """Validate a configuration already read from YAML; raise :class:`ConfigError` naming the first key at fault."""
    if not isinstance(data, dict):
        raise ConfigError("", "a configuration file is a mapping with a 'sources' key")
    data = interpolate(data, os.environ if variables is None else variables)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_loc(first["loc"]), first["msg"]) from None
    from gateway.validation import check_config  # the catalog and adapters are imported only here

    check_config(config)
    return config


def load_config(path: str | Path, variables: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, interpolate and validate a YAML configuration file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, variables)
