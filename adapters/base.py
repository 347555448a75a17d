"""The adapter contract: what an integrator implements to bring one kind of department system to OneWindow.

An adapter speaks one protocol (SOAP, REST, SQL, or a department's odd one). The gateway gives it the source's
configuration and asks it for *records* by key; it never maps fields, authorizes or caches -- the source layer
does that, the same for every adapter. A record is a plain mapping as the department shaped it (legacy names and
codes included); the source's ``provides`` section says how to read unified fields from it.

A minimal adapter::

    class ParcelAdapter(Adapter):
        Options = ParcelOptions          # pydantic model of the source's connection keys
        Query = ParcelQuery              # pydantic model of one query's keys

        async def fetch(self, query: str, keys: Sequence[str]) -> dict[str, list[Record]]:
            spec = self.queries[query]
            rows = await self._client.lookup(spec.table, keys)
            return {row["owner_id"]: [row] for row in rows}

        async def aclose(self) -> None:
            await self._client.close()

Register it under a kind name through the ``onewindow.adapters`` entry-point group (see
:mod:`adapters.registry`) and prove it with the conformance suite in :mod:`adapters.conformance`.

Rules every adapter keeps:

* Third-party exceptions are translated into :mod:`gateway.errors` (``SourceTimeout``, ``SourceUnavailable``,
  ``SourceFault``, ``BadSourceData``) with ``raise ... from exc``; nothing else leaves ``fetch``.
* A key the department does not know is simply absent from the result (not an error).
* ``fetch`` receives more than one key only for queries whose :meth:`capabilities` say ``batch``.
* ``open`` checks what can only be checked against the live system (a WSDL's operations, an OpenAPI document's
  paths, a database's tables and columns) and raises :class:`~gateway.errors.ConfigError` naming the key.
* ``aclose`` closes only what the adapter created itself.

An adapter may also *write*: a source's ``commands`` (parsed by the adapter's ``Command`` model) name the writes
the department accepts, and :meth:`Adapter.write` runs several of them, given by name with their parameters, as
one unit: all or none. A write whose rows are not as its command expects (a status changed meanwhile, a row
already there) raises :class:`~gateway.errors.WriteConflict` and nothing is written. Adapters that cannot write
keep the default, which refuses.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import SourceConfig, error_path
from gateway.errors import ConfigError

__all__ = [
    "SHAPE_SCALARS",
    "Adapter",
    "AdapterCommand",
    "AdapterOptions",
    "AdapterQuery",
    "Capabilities",
    "FieldShape",
    "Instrumentation",
    "Record",
    "RecordShape",
    "Write",
    "department_message",
    "mentions",
]

Record = Mapping[str, Any]

# The scalar types a department's own description (WSDL, OpenAPI, table columns) is read into.
SHAPE_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "Date", "DateTime", "Decimal"})


@dataclass(frozen=True)
class FieldShape:
    """One field of a department's record, as the system itself describes it.

    ``type`` is one of :data:`SHAPE_SCALARS`, or ``"Object"`` with ``fields``; ``many`` for a list (of scalars
    or objects). Names are the department's own (``GJJZH``, ``balance``, ``Persons``).

        >>> FieldShape("Object", fields={"YE": FieldShape("Decimal")}).fields["YE"].type
        'Decimal'
    """

    type: str
    many: bool = False
    fields: Mapping[str, FieldShape] | None = None
    description: str = ""


# What one record of a query looks like (after the query's ``result`` path): its fields by the department's names.
RecordShape = Mapping[str, FieldShape]


class AdapterOptions(BaseModel):
    """Base for an adapter's connection options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AdapterQuery(BaseModel):
    """Base for one query's options. ``many`` is common to all adapters and already read by the gateway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    many: bool = False


class AdapterCommand(BaseModel):
    """Base for one write command's options (a source's ``commands``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Write:
    """One write to run: a configured command, by name, with its parameters by the names the command uses.

    >>> Write("add_event", {"caseNumber": "BJ2026...", "event": "SUPPLEMENT_REQUESTED"}).command
    'add_event'
    """

    command: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Capabilities:
    """What a query can do beyond fetching one key.

    ``batch``: many keys cost one department call. ``search``: records can be listed by filters.
    """

    batch: bool = False
    search: bool = False


_MESSAGE_CHARS = 240
_REDACTED = "***"
# An 18-character ID number or unified social credit code, a 15-digit ID number, a bank card: any run of 15 or
# more ASCII letters and digits with a digit in it. Personal data, never repeated in a message.
_IDENTIFIER = re.compile(r"[0-9A-Za-z]{15,}")


def department_message(text: Any, keys: Sequence[str] = (), secrets: Sequence[str] = ()) -> str:
    """A department's own message (a fault string, a ``msg`` in a body) made fit for an error: one line, short,
    without the keys asked for, secrets, or anything that looks like an ID number or credit code.

    >>> department_message("无记录: 11010519491231002X", keys=["11010519491231002X"])
    '无记录: {key}'
    >>> department_message("账户 110105194912310021 已冻结")
    '账户 *** 已冻结'
    """
    message = " ".join(str(text).split())
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        message = message.replace(secret, _REDACTED)
    for key in keys:
        if key:
            message = message.replace(key, "{key}")
    message = _IDENTIFIER.sub(lambda m: _REDACTED if any(c.isdigit() for c in m[0]) else m[0], message)
    return message if len(message) <= _MESSAGE_CHARS else message[:_MESSAGE_CHARS] + "…"


def mentions(template: Any, marker: str) -> bool:
    """Whether a request template (strings, mappings and lists of them) mentions ``marker`` (``{key}``, ``{keys}``).

    >>> mentions({"ids": ["{keys}"]}, "{keys}")
    True
    """
    if isinstance(template, str):
        return marker in template
    if isinstance(template, Mapping):
        return any(mentions(value, marker) for value in template.values())
    if isinstance(template, list):
        return any(mentions(value, marker) for value in template)
    return False


class Instrumentation(Protocol):
    """What traces an adapter's calls (:mod:`gateway.telemetry`, when tracing is on). An adapter hands it each
    client it creates itself -- an ``httpx`` client, a SQLAlchemy engine -- before first use."""

    def http_client(self, client: Any) -> None: ...

    def engine(self, engine: Any) -> None: ...


class Adapter(ABC):
    """One configured department system, spoken to in one protocol."""

    Options: ClassVar[type[AdapterOptions]] = AdapterOptions
    Query: ClassVar[type[AdapterQuery]] = AdapterQuery
    instrumentation: Instrumentation | None = None
    """Set by the gateway before :meth:`open` when tracing is on; ``None`` otherwise."""
    Command: ClassVar[type[AdapterCommand]] = AdapterCommand

    def __init__(self, name: str, config: SourceConfig) -> None:
        self.name = name
        self.config = config
        self.options = self.parse_options(name, config)
        self.queries = self.parse_queries(name, config)
        self.commands = self.parse_commands(name, config)

    # -- configuration, checked before anything is opened ------------------------------------------------------

    @classmethod
    def parse_options(cls, name: str, config: SourceConfig) -> Any:
        try:
            return cls.Options.model_validate(config.options)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(error_path(first["loc"], config.options, f"sources.{name}"), first["msg"]) from None

    @classmethod
    def parse_queries(cls, name: str, config: SourceConfig) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        for qname, query in config.queries.items():
            given = query.model_dump()
            try:
                parsed[qname] = cls.Query.model_validate(given)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = f"sources.{name}.queries.{qname}"
                raise ConfigError(error_path(first["loc"], given, where), first["msg"]) from None
        return parsed

    @classmethod
    def parse_commands(cls, name: str, config: SourceConfig) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        for cname, given in config.commands.items():
            try:
                parsed[cname] = cls.Command.model_validate(given)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = f"sources.{name}.commands.{cname}"
                raise ConfigError(error_path(first["loc"], given, where), first["msg"]) from None
        return parsed

    # -- the contract --------------------------------------------------------------------------------------------

    def capabilities(self, query: str) -> Capabilities:
        """What ``query`` can do. The default: one key per call, no search."""
        return Capabilities()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and check the configuration against the live system. Called once, at start-up."""

    @abstractmethod
    async def fetch(self, query: str, keys: Sequence[str]) -> dict[str, list[Record]]:
        """Records for each key; a key with none is absent. More than one key only when ``batch``."""

    async def search(self, query: str, filters: Mapping[str, Any], *, limit: int, offset: int) -> list[Record]:
        """Records whose fields at the given paths equal the given values, in a stable order."""
        raise NotImplementedError(f"{type(self).__name__} cannot search")

    async def write(self, writes: Sequence[Write]) -> None:
        """Run ``writes`` (configured commands with their parameters) as one unit, in order: all or none.
        Raises :class:`~gateway.errors.WriteConflict` when a command's rows are not as it expects."""
        raise NotImplementedError(f"{type(self).__name__} cannot write")

    async def describe(self, query: str) -> RecordShape | None:
        """The shape of one record of ``query`` as the department system describes it (the WSDL's types, the
        OpenAPI document's schema, the table's reflected columns), read after :meth:`open`; ``None`` when the
        system describes nothing. The gateway generates a source's raw GraphQL namespace from it."""
        return None

    async def probe(self) -> str:
        """Reach the department once, cheaply; return a short description or raise a ``SourceError``."""
        await self.open()
        return "reachable"

    @abstractmethod
    async def aclose(self) -> None:
        """Release what this adapter created (clients, pools, engines)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
