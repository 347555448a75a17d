"""The SOAP adapter: a department's WSDL-described web service, spoken to with zeep over httpx (on aiohttp's pool).

Each query names an operation of the bound service and port, a request template and where the record sits in
the response; a query may add a batch operation that answers many keys in one call::

    sources:
      civil_affairs:
        kind: soap
        department: Civil Affairs Bureau
        wsdl: https://mz.example.gov.cn/PersonService?wsdl     # or a local file path
        service: PersonService                                 # optional: the first service otherwise
        port: PersonServicePort                                # optional: the service's first port otherwise
        address: https://mz-internal.example.gov.cn/soap       # optional: overrides the WSDL's soap:address
        timeout: 2s
        credentials:                                           # optional: see adapters.credentials
          {type: wsse_username_token, username: onewindow, password: "${MZ_PASSWORD}", digest: true}
        tls: {ca: mz-ca.pem, cert: client.pem, key: client.key}   # optional: mutual TLS, also for the WSDL
        not_found_faults: [NO_RECORD, Client.NotFound]         # optional: faults that mean "no such record"
        fast_path: true                                        # optional: false sends every call through zeep
        queries:
          person:
            operation: QueryPerson
            request: {IdCardNo: "{key}"}                       # "{key}" is replaced by the key
            result: Persons.Person                             # dotted path to the record (default: all)
            not_found_faults: [NO_RECORD]                      # optional: this query's own, instead of the source's
            batch:
              operation: QueryPersonBatch
              request: {IdCardNos: {string: "{keys}"}}         # "{keys}" is replaced by the list of keys
              result: Persons.Person                           # dotted path to the list of records
              key: IdCardNo                                    # dotted path, in a record, of its key
        provides:
          Person.name: {query: person, value: XM}

Records are the responses as plain dicts (``zeep.helpers.serialize_object``): ``xs:decimal`` stays
:class:`decimal.Decimal`, ``xs:date`` stays :class:`datetime.date`, a nil element is ``None``. SOAP 1.1 or 1.2
follows the WSDL's binding.

``not_found_faults`` (on the source, or per query, where an empty list turns the source's off) lists the fault
codes with which a department says "no such record": such a fault makes the key absent, not an error. An entry
matches the fault code with or without its prefix (``soap:Client.NotFound``, ``Client.NotFound``), its last
refinement (``NotFound``), a SOAP 1.2 subcode (``NotFound``, or ``Sender.NotFound``, also known by its SOAP 1.1
name ``Client.NotFound``), or the text of a code element in the fault's detail (``code``, ``errorCode``,
``returnCode``, ``resultCode``, ``statusCode`` and the like)::

    <soap:Fault><faultcode>soap:Client.NotFound</faultcode>...</soap:Fault>          # Client.NotFound, NotFound
    <env:Fault><env:Code><env:Value>env:Sender</env:Value>
        <env:Subcode><env:Value>mz:NoRecord</env:Value></env:Subcode></env:Code>...
      <env:Detail><mz:Error><mz:ErrorCode>NO_RECORD</mz:ErrorCode></mz:Error></env:Detail></env:Fault>
                                                                   # NoRecord, Sender.NoRecord, NO_RECORD

Calls are compiled at :meth:`SoapAdapter.open` (see :mod:`adapters.soap_fast`): zeep loads and checks the WSDL,
then each query's call of a document/literal operation gets an envelope template and an answer reader that answer
the same records and raise the same errors as zeep's path at a fraction of its CPU. A call that cannot be compiled
faithfully (rpc style, attributes, ``xsd:choice``, WS-Security, ...) stays on zeep: :attr:`SoapAdapter.zeep_calls`
says which and why, and a DEBUG line of the ``adapters.soap`` logger says so at open.

:meth:`SoapAdapter.describe` reads a query's record shape from the WSDL's types (see :mod:`adapters.soap_shapes`).

Errors: a refused connection is ``SourceUnavailable``; no answer within the source's ``timeout`` is
``SourceTimeout``; a SOAP fault, or an HTTP error status without one (an HTML error page), is ``SourceFault``
carrying the fault code as ``department_code``; an answer that is not a readable SOAP envelope of the expected
shape is ``BadSourceData``. A 401 or 403 from the WSDL's server or the endpoint, and a WS-Security
``FailedAuthentication``/``InvalidSecurityToken`` fault, is ``SourceCredentialsRefused`` (a ``SourceFault``)
pointing at ``sources.<name>.credentials``; a refused TLS handshake is ``SourceUnavailable``. The ``credentials``
of HTTP types (``basic``, ``bearer``, ``oauth2_client_credentials``, ``hmac_headers``) apply to the WSDL's
download as well as to the calls. No message, and no zeep log line, carries a secret; messages name paths, keys
and types, never a value of a department's record (a fault's own reason text is the department's and is quoted).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.proxy
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, field_validator
from zeep.transports import AsyncTransport

from adapters.base import (
    Adapter,
    AdapterOptions,
    AdapterQuery,
    Capabilities,
    Record,
    RecordShape,
    department_message,
    mentions,
)
from adapters.credentials import Credentials, TlsOptions, http_auth, redact, secret_values, ssl_context, wsse_token
from adapters.soap_fast import CompiledCall, NotCompiled, compile_call
from adapters.soap_shapes import describe_output
from adapters.transport import department_client, timed_out
from gateway.config import SourceConfig
from gateway.errors import (
    BadSourceData,
    ConfigError,
    SourceCredentialsRefused,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)

__all__ = ["SoapAdapter", "SoapBatch", "SoapOptions", "SoapQuery"]

_log = logging.getLogger(__name__)

KEY = "{key}"
KEYS = "{keys}"

# What zeep says when a non-200 answer parses as XML but holds no SOAP fault (e.g. an XHTML error page).
_ZEEP_NO_FAULT = "Unknown fault occured"

# HTTP statuses that mean the department refused the gateway's own credentials.
_REFUSED_STATUSES = frozenset({401, 403})

# WS-Security fault codes (local names) that mean the department refused the UsernameToken.
_WSSE_REFUSALS = frozenset({"FailedAuthentication", "InvalidSecurityToken"})

# The fault codes SOAP 1.1 and 1.2 name differently, each by the other's name.
_SOAP_CODE_ALIASES = {"Sender": "Client", "Receiver": "Server", "Client": "Sender", "Server": "Receiver"}

# Names (case-folded, without "_" and "-") of the elements in a fault's detail that hold the department's own code.
_DETAIL_CODE_NAMES = frozenset(
    {"code", "errorcode", "errcode", "faultcode", "reasoncode", "resultcode", "returncode", "retcode", "statuscode"}
)

# What ``_call`` answers for a fault that, by the query's ``not_found_faults``, means "no record".
_NO_RECORD = object()


class SoapOptions(AdapterOptions):
    """The source's connection keys."""

    wsdl: str
    service: str | None = None
    port: str | None = None
    address: str | None = None
    verify_tls: bool = True
    credentials: Credentials | None = None
    tls: TlsOptions | None = None
    not_found_faults: list[str] = Field(default_factory=list)
    fast_path: bool = True


class SoapBatch(BaseModel):
    """The operation that answers many keys in one call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: str
    request: dict[str, Any]
    result: str | None = None
    key: str

    @field_validator("request")
    @classmethod
    def _uses_keys(cls, request: dict[str, Any]) -> dict[str, Any]:
        if not mentions(request, KEYS):
            raise ValueError(f'a batch request template must place the keys with "{KEYS}"')
        return request


class SoapQuery(AdapterQuery):
    """One query: an operation, its request template, and where the record is in the response."""

    operation: str
    request: dict[str, Any]
    result: str | None = None
    batch: SoapBatch | None = None
    not_found_faults: list[str] | None = None  # None: the source's

    @field_validator("request")
    @classmethod
    def _uses_key(cls, request: dict[str, Any]) -> dict[str, Any]:
        if not mentions(request, KEY):
            raise ValueError(f'a request template must place the key with "{KEY}"')
        return request


def _fill(template: Any, key: str | None = None, keys: list[str] | None = None) -> Any:
    """The template with ``"{keys}"`` replaced by ``keys`` and ``"{key}"`` (even in a string) by ``key``."""
    if isinstance(template, str):
        if template == KEYS and keys is not None:
            return list(keys)
        return template.replace(KEY, key) if key is not None else template
    if isinstance(template, Mapping):
        return {k: _fill(v, key, keys) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, key, keys) for v in template]
    return template


def _wsdl_location(wsdl: str) -> str:
    """zeep reads a plain path itself but not a ``file://`` URL through httpx: turn such a URL into a path."""
    parsed = urlparse(wsdl)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return wsdl


class SoapAdapter(Adapter):
    """A department's SOAP service. ``http_client``: a shared client the adapter uses but never closes."""

    Options = SoapOptions
    Query = SoapQuery

    options: SoapOptions
    queries: dict[str, SoapQuery]

    def __init__(self, name: str, config: SourceConfig, *, http_client: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config)
        self._verify = ssl_context(name, self.options.tls, verify=self.options.verify_tls)
        self._auth = http_auth(name, self.options.credentials, timeout=config.timeout, verify=self._verify)
        self._wsse = wsse_token(self.options.credentials)
        self._secrets = secret_values(self.options.credentials)
        if http_client is not None and (self._auth is not None or self.options.tls is not None):
            raise ValueError(f"source {name!r} sets HTTP credentials or tls, which a shared client cannot take")
        self._shared_client = http_client
        self._http: httpx.AsyncClient | None = None
        self._owns_http = False
        self._service: Any = None
        self._binding: Any = None
        self._operation_count = 0
        self._compiled: dict[str, CompiledCall] = {}
        self._zeep_calls: dict[str, str] = {}

    # -- opening -------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the WSDL, bind the service and port, check every query's operations and request templates."""
        if self._service is not None:
            return
        if self._shared_client is not None:
            http, self._owns_http = self._shared_client, False
        else:
            http = department_client(
                verify=self._verify,
                timeout=self.config.timeout,
                max_connections=self.config.max_concurrency,
                auth=self._auth,
            )
            self._owns_http = True
            if self.instrumentation is not None:
                self.instrumentation.http_client(http)
        self._http = http
        try:
            client = await self._load_wsdl(http)
            port = self._bind(client)
            address = self.options.address or port.binding_options.get("address")
            if not address:
                raise ConfigError(f"sources.{self.name}.address", "the WSDL's port has no soap:address; set one")
            options = {**port.binding_options, "address": address}
            service = zeep.proxy.AsyncServiceProxy(client, port.binding, **options)  # type: ignore[no-untyped-call]
            self._check_queries(client, service, port.binding.all())
            self._compile_calls(client, port.binding, options)
        except BaseException:
            await self.aclose()
            raise
        self._service = service
        self._binding = port.binding
        self._operation_count = len(port.binding.all())

    async def _load_wsdl(self, http: httpx.AsyncClient) -> Any:
        location = _wsdl_location(self.options.wsdl)
        headers = http.headers.copy()
        # zeep loads the WSDL synchronously; this client lives only for the load, in a worker thread.
        with httpx.Client(verify=self._verify, timeout=self.config.timeout, auth=self._auth) as wsdl_http:
            transport = _Transport(client=http, wsdl_client=wsdl_http)  # type: ignore[no-untyped-call]
            http.headers.update(headers)  # zeep replaces the client's headers with its own User-Agent
            if self._secrets:
                # zeep only calls isEnabledFor() and debug() on its transport's logger
                transport.logger = _RedactingLogger(transport.logger, self._secrets)  # type: ignore[assignment]
            try:
                return await asyncio.to_thread(zeep.AsyncClient, location, transport=transport, wsse=self._wsse)
            except httpx.TimeoutException as exc:
                raise SourceTimeout(self.name, f"WSDL {location} not loaded within {self.config.timeout}s") from exc
            except (httpx.HTTPError, ssl.SSLError) as exc:  # a TLS 1.3 alert escapes httpx as SSLError
                raise SourceUnavailable(self.name, f"WSDL {location} unreachable: {self._redact(str(exc))}") from exc
            except zeep.exceptions.TransportError as exc:
                if exc.status_code in _REFUSED_STATUSES:
                    raise self._refused(f"WSDL {location}: HTTP {exc.status_code}") from exc
                raise SourceUnavailable(self.name, f"WSDL {location} answered HTTP {exc.status_code}") from exc
            except OSError as exc:
                raise ConfigError(f"sources.{self.name}.wsdl", f"cannot read {location}: {exc.strerror}") from exc
            except (zeep.exceptions.Error, ValueError) as exc:  # zeep reports a malformed document as either
                raise BadSourceData(self.name, f"WSDL {location} is not a usable WSDL: {exc}") from exc

    def _bind(self, client: Any) -> Any:
        services = client.wsdl.services
        if not services:
            raise BadSourceData(self.name, f"WSDL {self.options.wsdl} defines no service")
        service_name = self.options.service or next(iter(services))
        if service_name not in services:
            raise ConfigError(
                f"sources.{self.name}.service",
                f"{service_name!r} is not in the WSDL; services: {', '.join(services)}",
            )
        ports = services[service_name].ports
        port_name = self.options.port or next(iter(ports))
        if port_name not in ports:
            raise ConfigError(
                f"sources.{self.name}.port",
                f"{port_name!r} is not a port of service {service_name!r}; ports: {', '.join(ports)}",
            )
        return ports[port_name]

    def _check_queries(self, client: Any, service: Any, operations: Mapping[str, Any]) -> None:
        """Each operation exists, and each request template builds a message (its element names are right)."""
        available = ", ".join(sorted(operations)) or "none"
        sample = "0"
        for qname, query in self.queries.items():
            calls = [("", query.operation, _fill(query.request, key=sample))]
            if query.batch is not None:
                calls.append(("batch.", query.batch.operation, _fill(query.batch.request, keys=[sample])))
            for prefix, operation, request in calls:
                path = f"sources.{self.name}.queries.{qname}.{prefix}"
                if operation not in operations:
                    raise ConfigError(
                        f"{path}operation",
                        f"{operation!r} is not an operation of the bound port; operations: {available}",
                    )
                try:
                    client.create_message(service, operation, **request)
                except (TypeError, zeep.exceptions.Error) as exc:
                    raise ConfigError(f"{path}request", f"does not fit operation {operation!r}: {exc}") from None

    def _compile_calls(self, client: Any, binding: Any, options: dict[str, Any]) -> None:
        """Compile each query's call (``person``) and batch call (``person.batch``), or say why it stays on zeep."""
        compiled: dict[str, CompiledCall] = {}
        on_zeep: dict[str, str] = {}
        for qname, query in self.queries.items():
            calls = [(qname, query.operation, query.request, False)]
            if query.batch is not None:
                calls.append((f"{qname}.batch", query.batch.operation, query.batch.request, True))
            for call, operation, template, batch in calls:
                if not self.options.fast_path:
                    on_zeep[call] = "fast_path is off"
                    continue

                def render(keys: list[str], template: Any = template, batch: bool = batch) -> Any:
                    return _fill(template, keys=keys) if batch else _fill(template, key=keys[0])

                try:
                    compiled[call] = compile_call(client, binding, options, operation, render, batch=batch)
                except NotCompiled as exc:
                    on_zeep[call] = str(exc)
                    _log.debug("source %s: %s (%s) goes through zeep: %s", self.name, call, operation, exc)
        self._compiled, self._zeep_calls = compiled, on_zeep

    @property
    def zeep_calls(self) -> Mapping[str, str]:
        """The calls (``person``, ``person.batch``) that go through zeep, each with the reason; the others are
        compiled. Empty before :meth:`open`."""
        return dict(self._zeep_calls)

    # -- the contract --------------------------------------------------------------------------------------

    def capabilities(self, query: str) -> Capabilities:
        return Capabilities(batch=self.queries[query].batch is not None)

    async def fetch(self, query: str, keys: Sequence[str]) -> dict[str, list[Record]]:
        spec = self.queries[query]
        not_found = self._not_found_faults(spec)
        if len(keys) == 1:
            key = keys[0]
            request = _fill(spec.request, key=key)
            response = await self._call(spec.operation, request, not_found, [key], self._compiled.get(query))
            if response is _NO_RECORD:
                return {}
            records = self._records(_at(response, spec.result, self.name, "result path"), many=spec.many)
            return {key: records} if records else {}
        if not keys:
            return {}
        if spec.batch is None:  # not asked for by the gateway (no batch capability), but still answered
            found: dict[str, list[Record]] = {}
            for key in keys:
                found.update(await self.fetch(query, [key]))
            return found
        batch = spec.batch
        request = _fill(batch.request, keys=list(keys))
        response = await self._call(batch.operation, request, not_found, keys, self._compiled.get(f"{query}.batch"))
        if response is _NO_RECORD:
            return {}
        wanted = set(keys)
        found = {}
        for record in self._records(_at(response, batch.result, self.name, "batch result path"), many=True):
            owner = _at(record, batch.key, self.name, "batch key path")
            if owner is not None and str(owner) in wanted:
                found.setdefault(str(owner), []).append(record)
        return {key: found[key] for key in keys if key in found}

    async def describe(self, query: str) -> RecordShape | None:
        """One record of ``query`` as the WSDL's types describe it: the operation's output element, unwrapped as
        zeep unwraps it, followed along the query's ``result`` path (a ``many`` query's record is one of the
        repeated elements there). ``None`` when the path ends at a simple value. Opens the adapter if need be."""
        spec = self.queries[query]
        await self.open()
        where = f"sources.{self.name}.queries.{query}"
        return describe_output(self._binding, spec.operation, spec.result, where=where)

    async def probe(self) -> str:
        """Load the WSDL (if not yet open) and describe the bound port."""
        await self.open()
        return f"WSDL ok, {self._operation_count} operations"

    async def aclose(self) -> None:
        http, self._http, self._service, self._binding = self._http, None, None, None
        self._compiled, self._zeep_calls = {}, {}
        if http is not None and self._owns_http:
            await http.aclose()
        self._owns_http = False

    # -- calling -------------------------------------------------------------------------------------------

    def _not_found_faults(self, spec: SoapQuery) -> frozenset[str]:
        configured = spec.not_found_faults if spec.not_found_faults is not None else self.options.not_found_faults
        return frozenset(configured)

    def _refused(self, what: str) -> SourceCredentialsRefused:
        hint = f"the department refused the gateway's credentials; check sources.{self.name}.credentials"
        return SourceCredentialsRefused(self.name, f"{what}: {hint}")

    async def _call(
        self,
        operation: str,
        request: dict[str, Any],
        not_found: frozenset[str] = frozenset(),
        keys: Sequence[str] = (),
        compiled: CompiledCall | None = None,
    ) -> Any:
        """The answer as plain dicts, or ``_NO_RECORD`` for a fault whose code is one of ``not_found``.

        A ``compiled`` call sends its own envelope for ``keys`` with the adapter's client and reads the answer
        itself; both paths raise the same exceptions, translated here alike."""
        if self._service is None or self._http is None:
            raise RuntimeError(f"SOAP source {self.name!r} is not open; call open() first")
        timeout = self.config.timeout
        try:
            async with asyncio.timeout(timeout):  # an overall deadline, whatever the client's own timeouts
                if compiled is not None:
                    answer = await compiled.send(self._http, keys)
                    if answer.status_code in _REFUSED_STATUSES:
                        raise _Refused(answer.status_code)
                    return compiled.read(answer)
                response = await self._service[operation](**request)
        except TimeoutError as exc:
            raise SourceTimeout(self.name, f"{operation}: no answer within {timeout}s") from exc
        except httpx.TimeoutException as exc:
            if not timed_out(exc):  # refused or reset: the department is out of reach, not slow
                cause = exc.__cause__ or exc
                detail = f"{type(cause).__name__}: {self._redact(str(cause))}"
                raise SourceUnavailable(self.name, f"{operation}: {detail}") from exc
            raise SourceTimeout(self.name, f"{operation}: no answer within {timeout}s") from exc
        except _Refused as exc:
            raise self._refused(f"{operation}: HTTP {exc.status_code}") from exc
        except (httpx.HTTPError, ssl.SSLError) as exc:  # a TLS 1.3 alert escapes httpx as SSLError
            raise SourceUnavailable(self.name, f"{operation}: {type(exc).__name__}: {self._redact(str(exc))}") from exc
        except zeep.exceptions.Fault as exc:
            codes = _fault_codes(exc)
            if not_found.intersection(codes.all):
                return _NO_RECORD
            # a department may quote the credentials it refused
            message = department_message(_describe_fault(operation, exc), keys, self._secrets)
            code = self._redact(exc.code) if exc.code else None
            if _WSSE_REFUSALS.intersection(codes.names):
                raise SourceCredentialsRefused(
                    self.name, f"{message}; check sources.{self.name}.credentials", department_code=code
                ) from exc
            raise SourceFault(self.name, message, department_code=code) from exc
        except zeep.exceptions.TransportError as exc:
            if exc.status_code >= 400:
                raise SourceFault(self.name, f"{operation}: HTTP {exc.status_code} without a SOAP fault") from exc
            # zeep's message quotes the whole body; the status is what an operator needs here
            raise BadSourceData(self.name, f"{operation}: the answer (HTTP {exc.status_code}) is not XML") from exc
        except (zeep.exceptions.Error, ValueError, IndexError) as exc:  # zeep reads an empty Body as IndexError
            # zeep's and the parsers' messages may quote a value of the record (a date it could not read): the
            # exception's type is what the message may carry; the chained exception keeps the rest for a debugger
            raise BadSourceData(
                self.name, f"{operation}: the answer does not read as the WSDL describes it ({type(exc).__name__})"
            ) from exc
        except ArithmeticError as exc:  # zeep lets decimal.InvalidOperation through
            raise BadSourceData(self.name, f"{operation}: a value in the answer is not an xs:decimal") from exc
        return zeep.helpers.serialize_object(response, dict)  # type: ignore[no-untyped-call]

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _records(self, value: Any, *, many: bool) -> list[Record]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if len(items) > 1 and not many:
            raise BadSourceData(self.name, f"{len(items)} records where at most one was expected (set many: true)")
        records: list[Record] = []
        for item in items:
            if item is None:
                continue
            if not isinstance(item, Mapping):
                raise BadSourceData(
                    self.name, f"expected a record (an element with children), got a {type(item).__name__}"
                )
            records.append(item)
        return records


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """zeep's transport logs whole envelopes at DEBUG; with a WS-Security PasswordText, the password is in them."""

    def __init__(self, logger: logging.Logger, secrets: Sequence[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            masked = tuple(self._mask(arg) for arg in args)
            self.logger.log(level, self._mask(msg), *masked, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def _mask(self, value: object) -> object:
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        return redact(value, self._secrets) if isinstance(value, str) else value


def _at(value: Any, path: str | None, source: str, what: str) -> Any:
    """The value at a dotted path; ``None`` when an element on the way is absent or nil.

    ``what`` names the path in errors (``"result path"``), which name paths, keys and types, never a value.
    """
    if path is None:
        return value
    for part in path.split("."):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            kind = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
            raise BadSourceData(source, f"{what} {path} not found: {part} is read from {kind}, not a record")
        if part not in value:
            raise BadSourceData(
                source, f"{what} {path} not found: no {part}; the answer has keys: {', '.join(map(str, value))}"
            )
        value = value[part]
    return value


class _Refused(Exception):
    """The endpoint answered 401 or 403: raised inside zeep's call, translated in ``_call``."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class _Transport(AsyncTransport):
    """zeep's httpx transport, telling a refusal of the gateway's credentials (401, 403) from other errors
    whatever the body (zeep reads an XML body of a 401 as a fault without a code)."""

    async def post(self, address: str, message: Any, headers: Any) -> httpx.Response:
        response: httpx.Response = await super().post(address, message, headers)  # type: ignore[no-untyped-call]
        if response.status_code in _REFUSED_STATUSES:
            raise _Refused(response.status_code)
        return response


@dataclass(frozen=True)
class _FaultCodes:
    """A fault's codes: ``names`` from the code and subcodes (with and without prefix or namespace), ``all``
    adds the codes in its detail (``<detail><ErrorCode>NO_RECORD</ErrorCode></detail>``)."""

    names: frozenset[str]
    all: frozenset[str]


def _fault_codes(fault: zeep.exceptions.Fault) -> _FaultCodes:
    """SOAP 1.1 writes a refined code with dots (``soap:Client.NotFound``), SOAP 1.2 as subcodes (``env:Sender``
    with ``NotFound``): either is known by ``Client.NotFound``, ``Sender.NotFound`` and ``NotFound`` alike."""
    names: set[str] = set()
    chain: list[str] = []
    if isinstance(fault.code, str) and fault.code.strip():
        code = fault.code.strip()
        local = code.rpartition("}")[2].rpartition(":")[2]
        names |= {code, local}
        chain += local.split(".")
    for subcode in fault.subcodes or ():
        if isinstance(subcode, etree.QName):
            names |= {subcode.text, subcode.localname}
            chain.append(subcode.localname)
        else:
            names |= {str(subcode), str(subcode).rpartition(":")[2]}
            chain.append(str(subcode).rpartition(":")[2])
    if len(chain) > 1:
        names |= {chain[-1], ".".join(chain)}
        if (other := _SOAP_CODE_ALIASES.get(chain[0])) is not None:
            names.add(".".join([other, *chain[1:]]))
    detail: set[str] = set()
    if isinstance(fault.detail, etree._Element):
        for element in fault.detail.iter():
            if not isinstance(element.tag, str):
                continue  # a comment or processing instruction
            local = etree.QName(element).localname.casefold().replace("_", "").replace("-", "")
            if local in _DETAIL_CODE_NAMES and element.text and element.text.strip():
                detail.add(element.text.strip())
    return _FaultCodes(frozenset(names), frozenset(names | detail))


def _describe_fault(operation: str, fault: zeep.exceptions.Fault) -> str:
    if fault.code is None and fault.message == _ZEEP_NO_FAULT:
        return f"{operation}: an HTTP error status without a SOAP fault"
    code = f" [{fault.code}]" if fault.code else ""
    return f"{operation}: SOAP fault{code}: {fault.message}"
