"""REST/JSON department systems, spoken to over one pooled ``httpx.AsyncClient`` per source.

A source of kind ``rest``::

    sources:
      social_insurance:
        kind: rest
        department: Human Resources and Social Security Bureau
        base_url: ${SOCIAL_INSURANCE_URL}       # e.g. https://si.example.gov.cn/api/v1
        openapi: /openapi.json                  # optional; checked at start-up (see below)
        headers: {X-Client-Id: onewindow}
        timeout: 2s
        max_concurrency: 16                     # connections in the pool
        credentials: {type: bearer, token: ${SI_TOKEN}}   # optional: see adapters.credentials
        tls: {ca: ca.pem, cert: client.pem, key: client.key}   # optional: mutual TLS
        queries:
          insured:
            path: /insured/{key}                # {key}: the key, URL-encoded
            result: data                        # dotted path to the record; omit for the whole body
            not_found: [404]                    # statuses meaning "no such key" (the key is absent, no error)
            batch:                              # optional: many keys in one call
              path: /insured:batch
              body: {ids: "{keys}"}             # the string "{keys}" becomes the list of keys
              result: items                     # dotted path to the list of records
              key: idNumber                     # where each record says whose it is
          payments:
            path: /insured/{key}/payments
            params: {year: "2024", person: "{key}"}
            result: payments                    # with many: true, the path leads to a list of records
            many: true
        provides:
          Person.socialInsurance:
            query: insured
            fields: {insured: {value: insured}, months: {value: months}}

``openapi`` is an ``http(s)://`` URL, a path under ``base_url`` when it starts with ``/``, a ``file:`` URI,
or a local file path relative to the working directory. When set, :meth:`RestAdapter.open` reads the OpenAPI 3
document and refuses to start if a query's method and path (``{key}`` matching any ``{param}``) are not in it.

In a batch's ``params``, a value that is exactly ``"{keys}"`` repeats the parameter once per key
(``?id=a&id=b``); ``"{keys}"`` inside a longer value becomes the keys joined by commas.

JSON numbers with decimals are read as :class:`~decimal.Decimal`, so amounts of money stay exact.

**A status in the body.** Many department systems answer HTTP 200 whatever happened and say how it went in the
body, ``{"code": "0000", "msg": "成功", "data": {...}}``. ``status`` (on the source, for every query, or on a query,
replacing the source's; ``status: null`` turns it off for that query) says where the code is and what it means::

    sources:
      housing_fund:
        kind: rest
        base_url: ${HOUSING_FUND_URL}
        status:
          path: code                            # dotted path of the department's code (compared as text)
          message: msg                          # dotted path of its message (optional)
          ok: ["0000"]                          # read the record at the query's result
          not_found: ["1004"]                   # the key is absent (no error)
          refused: ["4010", "4011"]             # the gateway's credentials: SourceCredentialsRefused
        queries:
          account: {path: /accounts/{key}, result: data}

Any other code is a ``SourceFault`` carrying the code as ``departmentCode`` and the department's message, cut
short, with the key and anything that looks like an ID number, credit code or card number masked (``***``).
An answer without the code at ``path`` is ``BadSourceData``.

**Pages.** A ``many: true`` query whose records come page by page sets ``paging``; the adapter reads every page
and returns all the key's records. Page numbers::

          deposits:
            path: /accounts/{key}/deposits
            result: data.list
            many: true
            paging:
              page: pageNo                      # the parameter carrying the page number
              start: 1                          # the first page's number (0 for zero-based)
              size: pageSize                    # the parameter carrying the page size (optional)
              size_value: 50
              total: data.total                 # dotted path of the count of all records (optional)
              max_records: 1000                 # the most records read for one key

or cursors: ``paging: {cursor: paging.next, cursor_param: after, size: limit, size_value: 100}``, where
``cursor`` is the dotted path of the next page's cursor (absent, null or empty on the last page) and
``cursor_param`` the parameter sending it back. The page fields go in the query string, or in the JSON body of a
POST whose ``body`` is an object. Without ``total`` the last page is an empty one, a cursor-less one or (page
numbers) one shorter than ``size_value`` (than the first page when no ``size`` is sent). Never a silent cut: a
``total`` above ``max_records``, more records read than ``max_records``, pages holding fewer or more records
than ``total``, or a cursor sent twice raise ``BadSourceData`` naming the query and the counts. A paged query
cannot also ``batch``; ``not_found`` and ``status`` apply to every page.

**Record shapes.** With ``openapi`` set, :meth:`RestAdapter.describe` reads a query's record shape from the schema
of its operation's 200 JSON answer, following ``$ref`` s and the query's ``result`` path (through the ``status``
envelope) and, for ``many``, the list's items (see :mod:`adapters.openapi`); a ``result`` path the schema lacks is
a ``ConfigError`` naming ``queries.<name>.result``.

**OAuth2 client authentication.** ``credentials: {type: oauth2_client_credentials, ...}`` authenticates the
gateway to the token endpoint by ``auth_method`` (details in :mod:`adapters.credentials`)::

        credentials:
          type: oauth2_client_credentials
          token_url: https://idp.example.gov.cn/oauth2/token
          client_id: onewindow
          auth_method: private_key_jwt          # client_secret_basic (default) | client_secret_post | private_key_jwt
          private_key: ${SI_CLIENT_KEY}         # PEM text; or private_key_file: /etc/onewindow/si-client.key
          alg: RS256                            # RS256 (RSA key) | ES256 (P-256 key)
          key_id: onewindow-2026                # optional: the assertion's kid
          assertion_lifetime: 60s
          # client_secret: ${SI_CLIENT_SECRET}  # instead of a key, for client_secret_basic / client_secret_post

Failures, as the gateway sees them: connection refused, DNS, TLS or a dropped connection raise
``SourceUnavailable``; no answer within ``timeout`` (or 504) raises ``SourceTimeout``; 502 and 503 raise
``SourceUnavailable``; 401 and 403, like a token endpoint refusing the client, raise ``SourceCredentialsRefused``
(a ``SourceFault`` whose message says to check ``sources.<name>.credentials``); any other status that is not 2xx
or a ``not_found`` status raises ``SourceFault``; a body that is not JSON or lacks the ``result`` path raises
``BadSourceData``. Messages name the path template, never the key, which is personal data, nor a secret (see
:mod:`adapters.credentials`); a TLS handshake the department refuses is ``SourceUnavailable``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.base import Adapter, AdapterOptions, AdapterQuery, Capabilities, Record, RecordShape, mentions
from adapters.credentials import (
    Credentials,
    OAuth2ClientCredentialsAuth,
    TlsOptions,
    WsseUsernameTokenCredentials,
    http_auth,
    redact,
    secret_values,
    ssl_context,
)
from adapters.openapi import ShapeMismatch, check_operations, find_operation, record_shape
from adapters.rest_answers import PageAnswer, RestPaging, RestStatus, dig, read_pages, read_status
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

__all__ = ["RestAdapter", "RestBatch", "RestOptions", "RestPaging", "RestQuery", "RestStatus"]

_KEY = "{key}"
_KEYS = "{keys}"
_EXCERPT_CHARS = 200


class RestOptions(AdapterOptions):
    """A REST source's connection keys."""

    base_url: str
    openapi: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    credentials: Credentials | None = None
    tls: TlsOptions | None = None
    status: RestStatus | None = None  # the default for every query that sets none

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"{value!r} is not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/")


class RestBatch(BaseModel):
    """How to ask for many keys in one call; ``key`` is the dotted path, in each record, of its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST"] = "POST"
    path: str
    body: Any = None
    params: dict[str, str] = Field(default_factory=dict)
    result: str | None = None
    key: str

    @model_validator(mode="after")
    def _sends_the_keys(self) -> RestBatch:
        if not (mentions(self.body, _KEYS) or mentions(self.params, _KEYS)):
            raise ValueError("a batch must send the keys: put '{keys}' in its body or params")
        return self


class RestQuery(AdapterQuery):
    """One request template. ``body`` (a JSON template, ``{key}`` substituted) is sent when set."""

    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    result: str | None = None
    not_found: list[int] = Field(default_factory=lambda: [404])
    batch: RestBatch | None = None
    status: RestStatus | None = None
    paging: RestPaging | None = None

    @model_validator(mode="after")
    def _sends_the_key(self) -> RestQuery:
        if not (_KEY in self.path or mentions(self.params, _KEY) or mentions(self.body, _KEY)):
            raise ValueError("the request must carry the key: put '{key}' in its path, params or body")
        return self

    @model_validator(mode="after")
    def _pages_a_list(self) -> RestQuery:
        if self.paging is not None and not self.many:
            raise ValueError("paging reads a list of records: set many: true")
        if self.paging is not None and self.batch is not None:
            raise ValueError("a paged query cannot also batch; drop paging or batch")
        return self


class RestAdapter(Adapter):
    """A department's REST/JSON API. An injected ``client`` (shared, or mocked in tests) is never closed here;
    the source's ``timeout`` applies to every request either way.

    ::

        async with RestAdapter("social_insurance", config) as adapter:
            records = await adapter.fetch("insured", ["11010519491231002X"])
    """

    Options = RestOptions
    Query = RestQuery
    options: RestOptions
    queries: dict[str, RestQuery]

    def __init__(self, name: str, config: SourceConfig, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config)
        if client is not None and self.options.tls is not None:
            raise ValueError(f"source {name!r} sets tls, which an injected client cannot take; drop one")
        self._client = client
        self._owns_client = client is None
        self._closed = False
        self._timeout = httpx.Timeout(config.timeout)
        self._headers = {"Accept": "application/json", **self.options.headers}
        self._verify = ssl_context(name, self.options.tls)
        self._auth = http_auth(name, self.options.credentials, timeout=config.timeout, verify=self._verify)
        self._openapi: Mapping[str, Any] | None = None
        # A query's own status block replaces the source's (``status: null`` turns it off for that query).
        self._statuses = {
            qname: spec.status if "status" in spec.model_fields_set else self.options.status
            for qname, spec in self.queries.items()
        }

    @classmethod
    def parse_options(cls, name: str, config: SourceConfig) -> RestOptions:
        options: RestOptions = super().parse_options(name, config)
        if isinstance(options.credentials, WsseUsernameTokenCredentials):
            raise ConfigError(
                f"sources.{name}.credentials.type",
                "wsse_username_token is for SOAP sources; a REST source takes basic, bearer, "
                "oauth2_client_credentials or hmac_headers",
            )
        return options

    def capabilities(self, query: str) -> Capabilities:
        return Capabilities(batch=self._query(query).batch is not None)

    async def open(self) -> None:
        """Create the client and, when ``openapi`` is set, check every query against the document."""
        self._http()
        if self.options.openapi is not None:
            self._openapi = await self._openapi_document()
            self._check_operations(self._openapi)

    async def fetch(self, query: str, keys: Sequence[str]) -> dict[str, list[Record]]:
        spec = self._query(query)
        wanted = list(dict.fromkeys(keys))
        if len(wanted) <= 1:
            return await self._fetch_one(query, spec, wanted[0]) if wanted else {}
        if spec.batch is None:
            raise ValueError(f"query {query!r} of source {self.name!r} has no batch; fetch one key at a time")
        return await self._fetch_batch(query, spec, spec.batch, wanted)

    async def describe(self, query: str) -> RecordShape | None:
        """One record's fields as the ``openapi`` document's schema for the query's answer gives them (after
        ``result``; the list's items for ``many``); ``None`` without a document or where it describes none."""
        spec = self._query(query)
        if self.options.openapi is None:
            return None
        if self._openapi is None:
            self._openapi = await self._openapi_document()
        operation = find_operation(self._openapi, spec.method, spec.path, prefix=self._path_prefix())
        if operation is None:
            self._check_operations(self._openapi)  # names the query and lists what the document has
            return None
        try:
            return record_shape(self._openapi, operation, spec.result, many=spec.many)
        except ShapeMismatch as exc:
            where = f"sources.{self.name}.queries.{query}.result"
            raise ConfigError(where, f"{spec.method} {spec.path} in the OpenAPI document: {exc}") from None

    async def probe(self) -> str:
        url = self._openapi_url() or self.options.base_url
        response = await self._send("GET", url, f"GET {url}")
        if response.status_code >= 500:
            self._check_status(response, f"GET {url}")
        status = f"{response.status_code} {response.reason_phrase}".rstrip()
        return f"HTTP {status} from {url}"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._closed = True
        if client is not None and self._owns_client:
            await client.aclose()

    # -- requests --------------------------------------------------------------------------------------------

    async def _fetch_one(self, query: str, spec: RestQuery, key: str) -> dict[str, list[Record]]:
        what = f"{spec.method} {spec.path}"
        if spec.paging is not None:

            async def read_page(fields: dict[str, Any]) -> PageAnswer:
                answer = await self._answer(query, spec, key, fields)
                if answer is None:
                    return None
                document, found = answer
                return ([] if found is None else self._records(found, spec.result, what)), document

            records = await read_pages(spec.paging, read_page, source=self.name, query=query)
            return {key: records} if records else {}
        answer = await self._answer(query, spec, key)
        found = None if answer is None else answer[1]
        if found is None:
            return {}
        if spec.many:
            records = self._records(found, spec.result, what)
            return {key: records} if records else {}
        if not isinstance(found, Mapping):
            raise BadSourceData(
                self.name, f"{what} answered {type(found).__name__} at {_where(spec.result)}, not an object"
            )
        return {key: [found]}

    async def _answer(
        self, query: str, spec: RestQuery, key: str, page: Mapping[str, Any] | None = None
    ) -> tuple[Any, Any] | None:
        """The whole answer for one key and the value at ``result``; ``None`` when the key is unknown. ``page``
        fields go in the JSON body of a POST with an object body, else in the query string."""
        what = f"{spec.method} {spec.path}"
        params = {name: value.replace(_KEY, key) for name, value in spec.params.items()}
        body = _fill(spec.body, key=key)
        if page:
            if spec.method == "POST" and isinstance(body, Mapping):
                body = {**body, **page}
            else:
                params |= {name: str(value) for name, value in page.items()}
        url = self._url(spec.path.replace(_KEY, _path_segment(key)))
        for retry in (False, True):
            response = await self._send(spec.method, url, what, params=params, body=body)
            if response.status_code in spec.not_found:
                return None
            self._check_status(response, what, [key])
            document = self._document(response, what, [key])
            try:
                if not self._status_ok(query, document, what, [key]):
                    return None
            except SourceCredentialsRefused:
                # A token refused in the body (expired early, revoked): once more with a fresh one.
                if (
                    retry
                    or not isinstance(self._auth, OAuth2ClientCredentialsAuth)
                    or not self._auth.forget(response.request)
                ):
                    raise
                continue
            return document, self._at(document, spec.result, what)
        raise AssertionError("unreachable")

    async def _fetch_batch(
        self, query: str, spec: RestQuery, batch: RestBatch, keys: list[str]
    ) -> dict[str, list[Record]]:
        what = f"{batch.method} {batch.path}"
        response = await self._send(
            batch.method,
            self._url(batch.path),
            what,
            params=_batch_params(batch.params, keys),
            body=_fill(batch.body, keys=keys),
        )
        if response.status_code in spec.not_found:
            return {}
        self._check_status(response, what, keys)
        document = self._document(response, what, keys)
        if not self._status_ok(query, document, what, keys):
            return {}
        found = self._at(document, batch.result, what)
        records = [] if found is None else self._records(found, batch.result, what)
        asked = set(keys)
        grouped: dict[str, list[Record]] = {}
        for record in records:
            try:
                owner = str(dig(record, batch.key))
            except LookupError:
                raise BadSourceData(self.name, f"{what} answered a record without '{batch.key}'") from None
            if owner in asked:
                grouped.setdefault(owner, []).append(record)
        return {key: grouped[key] for key in keys if key in grouped}

    async def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        client = self._http()
        auth = httpx.USE_CLIENT_DEFAULT if self._auth is None else self._auth
        try:
            return await client.request(
                method, url, params=params, json=body, headers=self._headers, timeout=self._timeout, auth=auth
            )
        except httpx.TimeoutException as exc:
            if not timed_out(exc):
                raise self._unavailable(what, exc.__cause__ or exc) from exc
            raise SourceTimeout(self.name, f"no answer to {what} within {self.config.timeout:g}s") from exc
        except (httpx.TransportError, ssl.SSLError) as exc:  # a TLS 1.3 alert escapes httpx as SSLError
            raise self._unavailable(what, exc) from exc
        except httpx.DecodingError as exc:
            raise BadSourceData(self.name, f"{what} answered a body that cannot be decoded: {exc}") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SourceFault(self.name, f"{what} failed: {exc}") from exc

    def _unavailable(self, what: str, exc: BaseException) -> SourceUnavailable:
        reason = str(exc) or type(exc).__name__
        return SourceUnavailable(self.name, f"cannot reach {self.options.base_url} for {what}: {reason}")

    def _check_status(self, response: httpx.Response, what: str, keys: Sequence[str] = ()) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"{what} answered {status} {response.reason_phrase}".rstrip()
        excerpt = self._excerpt(response, keys)
        if excerpt:
            message += f": {excerpt}"
        if status in (502, 503):  # the department (or its gateway) is down, not wrong
            raise SourceUnavailable(self.name, message)
        if status == 504:
            raise SourceTimeout(self.name, message)
        if status in (401, 403):  # the gateway's own credentials, not the caller's: a configuration problem
            raise SourceCredentialsRefused(self.name, f"{message}; check sources.{self.name}.credentials")
        raise SourceFault(self.name, message)

    def _document(self, response: httpx.Response, what: str, keys: Sequence[str]) -> Any:
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise BadSourceData(
                self.name,
                f"{what} answered {response.status_code} with a body that is not JSON: "
                + self._excerpt(response, keys),
            ) from exc

    def _at(self, document: Any, path: str | None, what: str) -> Any:
        try:
            return dig(document, path)
        except LookupError as exc:
            raise BadSourceData(self.name, f"{what} answered without '{path}' (no '{exc.args[0]}')") from None

    def _status_ok(self, query: str, document: Any, what: str, keys: Sequence[str]) -> bool:
        """Whether the status in the body (when the query has one) says to read the record; see ``status``."""
        status = self._statuses[query]
        if status is None:
            return True
        secrets = secret_values(self.options.credentials)
        return read_status(document, status, source=self.name, what=what, keys=keys, secrets=secrets)

    def _records(self, found: Any, path: str | None, what: str) -> list[Record]:
        if not isinstance(found, list) or not all(isinstance(item, Mapping) for item in found):
            raise BadSourceData(self.name, f"{what} answered something other than a list of objects at {_where(path)}")
        return found

    # -- the OpenAPI document --------------------------------------------------------------------------------

    async def _openapi_document(self) -> dict[str, Any]:
        where = f"sources.{self.name}.openapi"
        location = self.options.openapi or ""
        url = self._openapi_url()
        if url is None:
            path = _local_path(location)
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise ConfigError(where, f"cannot read {path}: {exc.strerror}") from None
            origin = str(path)
        else:
            response = await self._send("GET", url, f"GET {url}")
            if 400 <= response.status_code < 500:
                message = f"{url} answered {response.status_code} {response.reason_phrase}"
                if location.startswith("/"):
                    message += " (a path starting with '/' is read under base_url; a local file is file:///...)"
                raise ConfigError(where, message)
            self._check_status(response, f"GET {url}")
            content, origin = response.content, url
        try:
            document = json.loads(content)
        except ValueError:
            raise ConfigError(where, f"{origin} is not JSON") from None
        if (
            not isinstance(document, dict)
            or not str(document.get("openapi", "")).startswith("3.")
            or not isinstance(document.get("paths"), dict)
        ):
            raise ConfigError(where, f"{origin} is not an OpenAPI 3 document (it needs 'openapi: 3.x' and 'paths')")
        return document

    def _check_operations(self, document: Mapping[str, Any]) -> None:
        declared = {
            qname: [("path", spec.method, spec.path)]
            + ([("batch.path", spec.batch.method, spec.batch.path)] if spec.batch is not None else [])
            for qname, spec in self.queries.items()
        }
        check_operations(document, declared, where=f"sources.{self.name}.queries", prefix=self._path_prefix())

    # -- small helpers ---------------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            if self._closed:
                raise RuntimeError(f"the adapter for source {self.name!r} is closed")
            # URLs are built absolute (see _url), so an injected client needs no base_url of its own.
            self._client = department_client(
                verify=self._verify, timeout=self._timeout, max_connections=self.config.max_concurrency
            )
            if self.instrumentation is not None:
                self.instrumentation.http_client(self._client)
        return self._client

    def _excerpt(self, response: httpx.Response, keys: Sequence[str]) -> str:
        """The start of a body, with keys and secrets masked: a department may echo the credentials it refused."""
        return _excerpt(response, keys, secret_values(self.options.credentials, response.request.headers))

    def _query(self, query: str) -> RestQuery:
        try:
            return self.queries[query]
        except KeyError:
            raise KeyError(f"source {self.name!r} has no query {query!r}") from None

    def _path_prefix(self) -> str:
        # An OpenAPI document may list paths relative to a server URL or with base_url's own path prefix.
        return urlsplit(self.options.base_url).path.rstrip("/")

    def _url(self, path: str) -> str:
        return f"{self.options.base_url}/{path.lstrip('/')}"

    def _openapi_url(self) -> str | None:
        location = self.options.openapi
        if location is None or not location.startswith(("http://", "https://", "/")):
            return None
        return location if location.startswith("http") else self._url(location)


def _path_segment(key: str) -> str:
    # A key of "." or ".." would otherwise be resolved as a dot segment and reach another resource.
    encoded = quote(key, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _fill(template: Any, *, key: str | None = None, keys: Sequence[str] | None = None) -> Any:
    """``template`` with ``{key}`` substituted in its strings and each string ``"{keys}"`` made the keys."""
    if isinstance(template, str):
        if keys is not None and template == _KEYS:
            return list(keys)
        return template.replace(_KEY, key) if key is not None else template
    if isinstance(template, Mapping):
        return {name: _fill(value, key=key, keys=keys) for name, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, key=key, keys=keys) for value in template]
    return template


def _batch_params(params: Mapping[str, str], keys: Sequence[str]) -> dict[str, str | list[str]]:
    return {
        name: list(keys) if value == _KEYS else value.replace(_KEYS, ",".join(keys)) for name, value in params.items()
    }


def _where(path: str | None) -> str:
    return f"'{path}'" if path else "the top of the body"


def _excerpt(response: httpx.Response, keys: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """The start of a body, for an error message, with the keys (personal data) and secrets masked."""
    text = " ".join(redact(response.text, secrets).split())
    for key in keys:
        text = text.replace(key, _KEY)
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def _local_path(location: str) -> Path:
    if location.startswith("file:"):
        return Path(url2pathname(urlsplit(location).path))
    return Path(location)
