"""Persisted queries: Apollo's Automatic Persisted Queries protocol, or a safelist of the only documents allowed.

A client sends the document's SHA-256 instead of the document (``extensions.persistedQuery``)::

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ecf4edb4..."}}}

``apq`` mode: an unknown hash is answered ``PERSISTED_QUERY_NOT_FOUND``; the client sends the hash again with the
document, which is checked against the hash and remembered (a bounded LRU, :class:`PersistedQueryStore`).
``safelist`` mode: only documents whose hash is in the safelist file are executed, whether sent in full or by hash;
anything else is refused with ``PERSISTED_QUERY_NOT_IN_SAFELIST`` before it is parsed. ``off``: a hash is answered
``PERSISTED_QUERY_NOT_SUPPORTED``.

The safelist file is JSON, a list of documents or an object from hash to document (as Apollo's and Relay's
persisted-query manifests are); each hash is checked when the file is loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import ConfigError

__all__ = ["DEFAULT_STORE_SIZE", "PersistedQueries", "PersistedQueryStore", "load_safelist", "sha256_hex"]

DEFAULT_STORE_SIZE = 1000

Mode = Literal["off", "apq", "safelist"]


def sha256_hex(document: str) -> str:
    """The hash APQ clients send: SHA-256 of the document text as UTF-8, in lowercase hexadecimal."""
    return hashlib.sha256(document.encode()).hexdigest()


class PersistedQueryStore:
    """Documents by hash, least recently used dropped first beyond ``maxsize``.

    >>> store = PersistedQueryStore(maxsize=1)
    >>> store.put("a", "{ a }"); store.put("b", "{ b }"); store.get("a") is None
    True
    """

    def __init__(self, maxsize: int = DEFAULT_STORE_SIZE) -> None:
        self.maxsize = maxsize
        self._documents: OrderedDict[str, str] = OrderedDict()

    def get(self, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is not None:
            self._documents.move_to_end(sha256)
        return document

    def put(self, sha256: str, document: str) -> None:
        self._documents[sha256] = document
        self._documents.move_to_end(sha256)
        while len(self._documents) > self.maxsize:
            self._documents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._documents)


def load_safelist(path: Path) -> dict[str, str]:
    """Read a safelist file; raise :class:`ConfigError` (``security.safelist``) naming what is wrong."""
    key = "security.safelist"
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(key, f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, list) and all(isinstance(d, str) for d in data):
        return {sha256_hex(document): document for document in data}
    if isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        for sha256, document in data.items():
            if sha256.lower() != sha256_hex(document):
                raise ConfigError(key, f"{path}: {sha256} is not the SHA-256 of its document")
        return {sha256.lower(): document for sha256, document in data.items()}
    raise ConfigError(key, f"{path} must hold a JSON list of documents or an object from SHA-256 to document")


def _refuse(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class PersistedQueries(SchemaExtension):
    """Resolve ``extensions.persistedQuery`` into the document before it is parsed, or refuse the request.

    Build the store and safelist once per application and pass a factory:
    ``lambda: PersistedQueries("apq", store=store)``.
    """

    def __init__(
        self,
        mode: Mode,
        *,
        store: PersistedQueryStore | None = None,
        safelist: Mapping[str, str] | None = None,
    ) -> None:
        if mode == "safelist" and safelist is None:
            raise ConfigError("security.safelist", "safelist mode needs a safelist file")
        self.mode = mode
        self.store = store if store is not None else PersistedQueryStore()
        self.safelist = safelist or {}
        self._register: tuple[str, str] | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.query = self._document(context.query, (context.operation_extensions or {}).get("persistedQuery"))
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        # only a valid document is remembered, so junk cannot push the clients' documents out of the store
        if self._register is not None and not self.execution_context.pre_execution_errors:
            self.store.put(*self._register)

    def _document(self, query: str | None, persisted: Any) -> str | None:
        if persisted is None:
            if self.mode == "safelist" and query is not None and sha256_hex(query) not in self.safelist:
                raise _refuse("This document is not in the safelist.", "PERSISTED_QUERY_NOT_IN_SAFELIST")
            return query
        if self.mode == "off":
            raise _refuse("Persisted queries are not supported.", "PERSISTED_QUERY_NOT_SUPPORTED")
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise _refuse("Only persisted query version 1 is supported.", "PERSISTED_QUERY_NOT_SUPPORTED")
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not sha256:
            raise _refuse("persistedQuery.sha256Hash must be a string.", "BAD_USER_INPUT")
        sha256 = sha256.lower()
        if self.mode == "safelist":
            listed = self.safelist.get(sha256)
            if listed is None or (query is not None and sha256_hex(query) != sha256):
                raise _refuse("This document is not in the safelist.", "PERSISTED_QUERY_NOT_IN_SAFELIST")
            return listed
        if query is None:
            stored = self.store.get(sha256)
            if stored is None:
                raise _refuse("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            return stored
        if sha256_hex(query) != sha256:
            raise _refuse("The provided sha256Hash does not match the query.", "PERSISTED_QUERY_HASH_MISMATCH")
        self._register = (sha256, query)
        return query
