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

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from adapters.credentials import Credentials, TlsOptions
from auth.config import AuthConfig
from gateway.calendar import CalendarConfig
from gateway.durations import Duration, DurationOrZero, KeySecret, Strict, parse_duration
from gateway.errors import ConfigError
from gateway.forms import CompiledForm, FormTemplate, compile_forms
from gateway.materials import ItemMaterials, MaterialsSection, compile_materials
from gateway.model import Catalog, ModelDeclaration, SharingClass

__all__ = [
    "DEFAULT_CACHE_LEASE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIMEOUT",
    "BreakerPolicy",
    "CacheConfig",
    "CachePolicy",
    "FieldMap",
    "GatewayConfig",
    "HttpConfig",
    "LimitsConfig",
    "MaintenanceConfig",
    "ProbeConfig",
    "QueryConfig",
    "RawConfig",
    "ResponseCacheConfig",
    "RetryPolicy",
    "SearchConfig",
    "SecurityConfig",
    "SharingClass",
    "SourceConfig",
    "TracingConfig",
    "error_path",
    "interpolate",
    "load_config",
    "merge_documents",
    "parse_config",
    "parse_duration",
    "read_document",
]

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_PORT = 8000
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_CACHE_LEASE = DEFAULT_TIMEOUT  # one attempt at the default timeout: a live holder is not overtaken
MAX_CACHE_LEASE = 60.0

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class FieldMap(Strict):
    """How one unified field is read from a query's record.

    ``value`` is a dotted path into the record (``Persons.Person.XM``); for an object field, ``fields`` maps each
    sub-field; for a reference, ``value`` is the referenced entity's key and ``kind`` (for an applicant) tells a
    person from a legal entity.
    """

    query: str | None = None
    value: str | None = None
    # A code table: inline, or the name of one in ``model.code_tables`` (replaced by its table when loaded).
    codes: dict[str, str] | None = None
    date_format: str | None = None
    fields: dict[str, FieldMap] | None = None
    kind: FieldMap | None = None
    # Unset: the field's default sharing class in the model (built-in fields: unconditional; added: conditional).
    sharing: SharingClass | None = None
    # The value when the department holds no record for the key (``false`` for "receives the allowance").
    absent: Any = None
    cache_ttl: Duration | None = None
    never_cache: bool = False


class QueryConfig(BaseModel):
    """A query the gateway may send a source. ``many``: a key has a list of records, not at most one.

    The remaining keys are the adapter's (a SOAP operation, a REST path, a SQL table), checked by its ``Query``.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    many: bool = False


class ProbeConfig(Strict):
    """What ``onewindow check --probe`` and ``/readyz`` ask a source to prove it answers with its credentials: one
    real call of ``query`` (the source's first query by default) for ``key``, a key the department holds. The
    record's paths that the source's ``provides`` read are checked to be there."""

    key: str = Field(min_length=1)
    query: str | None = None


class RawConfig(Strict):
    """A source's records exposed as they are, under ``<entity>.raw.<source>``, typed from the department's own
    description (WSDL, OpenAPI, table columns): the integrator's day-one view of a new department system.

    ``queries``: which queries (all by default, each taking a key of ``entity``). Raw records are personal data:
    ``sharing`` is ``conditional`` unless stated, under the source's owner and agreements, and every read is audited.
    """

    entity: str
    queries: list[str] | None = None
    sharing: SharingClass = SharingClass.CONDITIONAL


class SearchConfig(Strict):
    """Listing an entity by filters (``cases(applicant:, status:)``): the query to run and the record paths."""

    query: str
    key: str
    filters: dict[str, str] = Field(default_factory=dict)


class CachePolicy(Strict):
    """How a source's answers are cached (RFC 5861 windows). Unset values follow the top-level ``cache``."""

    ttl: Duration | None = None
    negative_ttl: Duration | None = None
    stale_while_revalidate: DurationOrZero = 0.0
    stale_if_error: DurationOrZero = 0.0
    never_cache: bool = False
    vary_by_caller: bool = False


class RetryPolicy(Strict):
    """Bounded retries of idempotent reads: ``attempts`` in all, jittered exponential backoff, and a budget."""

    attempts: int = Field(DEFAULT_RETRY_ATTEMPTS, ge=1, le=5)
    backoff: Duration = 0.05
    max_backoff: Duration = 0.5
    budget: float = Field(0.2, ge=0.0, le=1.0)


class BreakerPolicy(Strict):
    """Circuit breaker: open after ``failures`` consecutive failures, try again (half-open) after ``reset_after``."""

    failures: int = Field(5, ge=1)
    reset_after: Duration = 30.0


class WeeklyWindow(Strict):
    """A weekly maintenance window, in China Standard Time: ``{days: [sat, sun], start: "01:00", end: "05:00"}``."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")


class DatedWindow(Strict):
    """A one-off maintenance window: ``{start: 2026-12-01T22:00:00+08:00, end: 2026-12-02T06:00:00+08:00}``."""

    start: dt.datetime
    end: dt.datetime


class MaintenanceConfig(Strict):
    weekly: list[WeeklyWindow] = Field(default_factory=list)
    dates: list[DatedWindow] = Field(default_factory=list)


class SourceConfig(BaseModel):
    """One department system. Keys not named here are the adapter's connection options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str
    department: str
    timeout: Duration = DEFAULT_TIMEOUT
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1, le=1000)
    queries: dict[str, QueryConfig] = Field(min_length=1)
    # Writes the department accepts, in the adapter's own terms (``kind: sql``: insert/update), by name; the case
    # workflow (``workflow:``) runs them. A source without them is only read.
    commands: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The unified fields this source provides; may be empty for a source exposed only as raw records (``raw``).
    provides: dict[str, FieldMap] = Field(default_factory=dict)
    raw: RawConfig | None = None
    probe: ProbeConfig | None = None
    search: dict[str, SearchConfig] = Field(default_factory=dict)
    cache: CachePolicy = Field(default_factory=CachePolicy)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    # The department presents this bearer token to POST /hooks/invalidate/<source> when its data changes.
    invalidation_token: SecretStr | None = None
    # Sharing: the department that owns this source's data (``not_shared`` fields go only to it), and the
    # departments holding a sharing agreement for its ``conditional`` fields.
    owner: str | None = None
    agreements: list[str] = Field(default_factory=list)
    # The gateway's own credentials to the department and its TLS client certificate, read by the adapters that
    # speak HTTP (adapters/credentials.py); typed here so that secrets are SecretStr from the moment they are read.
    credentials: Credentials | None = None
    tls: TlsOptions | None = None
    # With ``tracing`` on, the department's HTTP calls carry W3C trace context (``traceparent``) and get a client
    # span; off for a department that must not be sent headers it does not expect (gateway/telemetry.py).
    trace_context: bool = True

    @property
    def options(self) -> dict[str, Any]:
        """The adapter's own keys, with ``credentials`` and ``tls`` when set."""
        options = dict(self.model_extra or {})
        if self.credentials is not None:
            options["credentials"] = self.credentials
        if self.tls is not None:
            options["tls"] = self.tls
        return options


class ResponseCacheConfig(Strict):
    """Whole answers to hot documents, in this process's memory (see :mod:`cache.responses`).

    An answer is kept per caller and document only while every cached record it was built from is stored unchanged
    and fresh, and is served again only after its disclosures are audited anew. ``max_bytes`` bounds the memory
    it takes (least recently used answers go first); answers larger than ``max_entry_bytes`` are not kept.
    """

    enabled: bool = True
    max_bytes: ByteSize = Field(ByteSize(32 * 1024 * 1024), ge=0)  # "32MiB", "64 MB" or a number of bytes
    max_entry_bytes: ByteSize = Field(ByteSize(256 * 1024), ge=0)


class CacheConfig(Strict):
    """The record cache: in memory by default, Redis (``redis://...``) when several gateway processes share it.

    ``key_secret`` keys the hash that turns (source, query, key) into a cache key, so no ID number is stored in
    clear; processes sharing a Redis must share it. ``encryption_key`` (32 bytes, base64) encrypts values with
    AES-GCM.

    ``lease`` (Redis only): how long one process's load of a key keeps the others from calling the department for
    it; they wait for its answer instead, and call themselves if none came within the lease (the holder died).
    Set it to about the ``timeout`` of the slowest source: a load outliving its lease may be made twice.
    """

    enabled: bool = True
    url: str = "memory://"
    ttl: Duration = 60.0
    negative_ttl: Duration = 10.0
    namespace: str = "onewindow"
    key_secret: SecretStr | None = None
    encryption_key: SecretStr | None = None
    lease: Duration = Field(DEFAULT_CACHE_LEASE, le=MAX_CACHE_LEASE)
    responses: ResponseCacheConfig = Field(default_factory=ResponseCacheConfig)


class LimitsConfig(Strict):
    """Refuse hostile documents before execution (defaults near graphql-armor's)."""

    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_cost: int = 5000
    max_root_fields: int = 20
    max_directives: int = 50
    max_batch: int = 10
    max_body_bytes: int = 100_000


class SecurityConfig(Strict):
    """Production hardening. ``production`` (the default outside ``onewindow demo``) turns off introspection,
    field suggestions and GraphiQL, and masks unexpected errors."""

    production: bool = True
    csrf: bool = True
    persisted_queries: Literal["off", "apq", "safelist"] = "apq"
    safelist: Path | None = None
    rate_limit: str | None = "600/minute"
    rate_limit_per_client: str | None = "1200/minute"
    rate_limit_storage: str = "memory://"
    # Keys the hash that names each principal's budget in a shared storage (redis://): every process sharing it
    # sets the same secret (at least 32 bytes, from the environment).
    rate_limit_key_secret: KeySecret | None = None
    request_deadline: Duration = 10.0
    limits: LimitsConfig = Field(default_factory=LimitsConfig)


class HttpConfig(Strict):
    """Where the gateway listens, and who may read its operational endpoints.

    ``operator_token`` (``${ONEWINDOW_OPERATOR_TOKEN}``, at least 32 bytes) is the bearer token that shows
    ``/readyz`` in full (sources, degraded list, the audit's state) and ``/metrics``; without it ``/readyz`` says only
    whether the process is ready. ``metrics_public`` serves ``/metrics`` to anyone. ``console`` serves the clerk's
    console at ``/console``; left unset, it is served wherever GraphiQL is (``graphiql`` on, not in production).
    """

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    graphiql: bool = False
    console: bool | None = None
    debug: bool = False
    operator_token: KeySecret | None = None
    metrics_public: bool = False


class TracingConfig(Strict):
    """OpenTelemetry traces: a span per request and per department call (see :mod:`gateway.telemetry`).

    Off by default. On, spans go over OTLP/HTTP (protobuf) to ``endpoint`` -- or, left unset, where the standard
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` variables say, else
    ``http://localhost:4318/v1/traces``; ``exporter: console`` prints them instead, ``none`` only propagates trace
    context. ``service_name`` unset: ``OTEL_SERVICE_NAME``, else ``onewindow``. ``sample_ratio`` of the traces
    started here are kept (a caller's sampled ``traceparent`` is followed).
    """

    enabled: bool = False
    exporter: Literal["otlp", "console", "none"] = "otlp"
    endpoint: str | None = None
    service_name: str | None = None
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)


class WorkflowConfig(Strict):
    """Case workflow at the window (gateway/workflow.py, docs/workflow.md): the approval platform's source, whose
    ``commands`` it writes through; the working-day calendar; how many working days left turn a case to WARNING;
    how long an idempotency key is remembered."""

    source: str
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    warning_days: int = Field(3, ge=0, le=365)
    idempotency_ttl: Duration = 86400.0


class GatewayConfig(Strict):
    """The whole configuration file."""

    http: HttpConfig = Field(default_factory=HttpConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    model: ModelDeclaration = Field(default_factory=ModelDeclaration)
    sources: dict[str, SourceConfig] = Field(min_length=1)
    # Each service item's required materials, matched to licence types or unified fields (gateway/materials.py).
    materials: MaterialsSection = Field(default_factory=dict)
    # Form templates prefilled from the departments (gateway.forms, gateway.prefill).
    forms: dict[str, FormTemplate] = Field(default_factory=dict)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    # Receiving applications, supplements and ratings, written through to the approval platform.
    workflow: WorkflowConfig | None = None

    _catalog: Catalog | None = PrivateAttr(default=None)
    _materials: dict[str, ItemMaterials] | None = PrivateAttr(default=None)
    _forms: dict[str, CompiledForm] | None = PrivateAttr(default=None)

    @property
    def catalog(self) -> Catalog:
        """The unified model this configuration reads into: the built-in model with ``model:`` laid over it."""
        if self._catalog is None:
            from schema.catalog import catalog_for  # the built-in model lives with the schema

            self._catalog = catalog_for(self.model)
        return self._catalog

    @property
    def service_materials(self) -> dict[str, ItemMaterials]:
        """``materials:`` checked against the catalog: each service item's materials, by item code."""
        if self._materials is None:
            self._materials = compile_materials(self.materials, self.catalog)
        return self._materials

    @property
    def compiled_forms(self) -> dict[str, CompiledForm]:
        """The ``forms:`` with their paths resolved against :attr:`catalog` (checked when the file is loaded)."""
        if self._forms is None:
            self._forms = compile_forms(self.forms, self.catalog)
        return self._forms


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


def error_path(loc: tuple[int | str, ...], given: Any, prefix: str = "") -> str:
    """The path of a validation error's ``loc`` in the ``given`` data (``sources.hrss.credentials.tls.ca``,
    ``queries[0]``), after ``prefix``, without the tag pydantic adds after a tagged union's key: the operator wrote
    ``credentials: {type: oauth2_client_credentials, tls: ...}``, not ``credentials.oauth2_client_credentials``."""
    out = prefix
    for part in loc:
        if isinstance(given, Mapping) and part not in given and given.get("type") == part:
            continue  # the tag of the union member that was validated
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        if isinstance(given, Mapping):
            given = given.get(part)
        elif isinstance(given, list) and isinstance(part, int) and 0 <= part < len(given):
            given = given[part]
        else:
            given = None
    return out


def parse_config(data: Any, variables: Mapping[str, str] | None = None) -> GatewayConfig:
    """Validate a configuration already read from YAML; raise :class:`ConfigError` naming the first key at fault."""
    if not isinstance(data, dict):
        raise ConfigError("", "a configuration file is a mapping with a 'sources' key")
    data = interpolate(data, os.environ if variables is None else variables)
    _name_code_tables(data)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(error_path(first["loc"], data), first["msg"]) from None
    if config.security.production:
        if config.auth.audit is None:
            raise ConfigError("auth.audit", "the disclosure audit cannot be turned off in production")
        if config.auth.development_principal is not None:
            raise ConfigError(
                "auth.development_principal", "a development principal is refused in production (security.production)"
            )
    from gateway.validation import check_config  # the catalog and adapters are imported only here

    check_config(config)
    config.service_materials  # noqa: B018 - checked now, so that a wrong material fails at start-up
    config.compiled_forms  # noqa: B018  -- a form's path that the model does not have fails here
    return config


def read_document(path: str | Path) -> Any:
    """One YAML configuration file as read, before interpolation and validation."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None


def merge_documents(base: Any, overlay: Any, path: str = "") -> Any:
    """``overlay`` laid over ``base``: mappings merge key by key, a source is replaced whole by one of the same
    name, anything else in ``overlay`` wins. Lets one file add departments (and the model they need) to another.

        >>> merge_documents({"sources": {"a": {"kind": "rest"}}, "cache": {"ttl": "60s"}},
        ...                 {"sources": {"b": {"kind": "sql"}}, "cache": {"enabled": False}})
        {'sources': {'a': {'kind': 'rest'}, 'b': {'kind': 'sql'}}, 'cache': {'ttl': '60s', 'enabled': False}}
    """
    if not isinstance(base, dict) or not isinstance(overlay, dict) or path.startswith("sources."):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        inner = f"{path}.{key}" if path else str(key)
        merged[key] = merge_documents(base[key], value, inner) if key in base else value
    return merged


def _name_code_tables(data: dict[str, Any]) -> None:
    """Replace ``codes: <name>`` in every source's ``provides`` by the table ``model.code_tables.<name>``."""
    model = data.get("model")
    tables = model.get("code_tables") if isinstance(model, dict) else None
    tables = tables if isinstance(tables, dict) else {}

    def resolve(fmap: Any, path: str) -> None:
        if not isinstance(fmap, dict):
            return
        codes = fmap.get("codes")
        if isinstance(codes, str):
            if codes not in tables:
                known = ", ".join(tables) or "none declared"
                raise ConfigError(f"{path}.codes", f"no code table {codes!r} in model.code_tables ({known})")
            fmap["codes"] = tables[codes]
        for sub in ("fields",):
            if isinstance(fmap.get(sub), dict):
                for name, inner in fmap[sub].items():
                    resolve(inner, f"{path}.{sub}.{name}")
        resolve(fmap.get("kind"), f"{path}.kind")

    sources = data.get("sources")
    for name, source in (sources if isinstance(sources, dict) else {}).items():
        provides = source.get("provides") if isinstance(source, dict) else None
        for target, fmap in (provides if isinstance(provides, dict) else {}).items():
            resolve(fmap, f"sources.{name}.provides.{target}")


def load_config(
    path: str | Path, variables: Mapping[str, str] | None = None, *, overlays: Sequence[str | Path] = ()
) -> GatewayConfig:
    """Read, interpolate and validate a YAML configuration file, with ``overlays`` laid over it in order
    (:func:`merge_documents`)."""
    data = read_document(path)
    for overlay in overlays:
        data = merge_documents(data, read_document(overlay))
    return parse_config(data, variables)
