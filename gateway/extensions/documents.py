"""Parse and validate each distinct document once: the parsed document by its text, its validation by the document.

Clients send the same few documents over and over. :class:`DocumentCache` keeps the parsed document for a text
(as strawberry's ``ParserCache`` does: a syntax error is raised from the parse stage, not kept) and the validation
errors for a parsed document, a schema and the request's validation rules. The parsed document for a text is the
same object on every request while it is kept, so its validation is found by that object's identity rather than by
hashing the whole syntax tree on every request (what an ``lru_cache`` over the document would do); an entry holds
the document and the schema it was made for, so an identity can never be mistaken for another's.

    schema = LoggedSchema(query=Query, extensions=[..., lambda: DocumentCache(maxsize=512)])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

__all__ = ["DocumentCache"]

# (the schema, the document, the rules) by their identities -> (the schema, the document, the errors)
_Validated = tuple[GraphQLSchema, DocumentNode, list[GraphQLError]]


@functools.cache
def _parser(maxsize: int) -> Callable[..., DocumentNode]:
    return functools.lru_cache(maxsize=maxsize)(parse)


@functools.cache
def _validations(maxsize: int) -> LRUCache[tuple[int, int, tuple[Any, ...]], _Validated]:
    return LRUCache(maxsize=maxsize)


class DocumentCache(SchemaExtension):
    """The parse and validation stages of a request, each done once per distinct document (see the module)."""

    def __init__(self, maxsize: int = 512) -> None:
        super().__init__()
        self._parse = _parser(maxsize)
        self._validated = _validations(maxsize)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = self._parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        schema = context.schema._schema
        document = context.graphql_document
        assert document is not None  # parsed: validation follows a parse without errors
        rules = context.validation_rules
        key = (id(schema), id(document), rules)
        found = self._validated.get(key)
        if found is None or found[0] is not schema or found[1] is not document:
            errors = validate_document(schema, document, rules)
            found = (schema, document, errors)
            self._validated[key] = found
        context.pre_execution_errors = found[2]
        yield
