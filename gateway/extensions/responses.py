"""Mark the requests whose whole answer may be kept (see :mod:`cache.responses`).

A query qualifies when every field at its root is one of :data:`schema.query.CACHEABLE_ROOTS`, without
directives; the view still keeps the answer only if it has no errors and every value came fresh from the cache.
Whether an operation qualifies depends on its document alone, so it is worked out once per parsed document and
operation name (the parsed document is the same object on every request while :mod:`gateway.extensions.documents`
keeps it).
"""

from __future__ import annotations

from collections.abc import Iterator

from cachetools import LRUCache
from graphql import DocumentNode, FieldNode, OperationType, get_operation_ast
from strawberry.extensions import SchemaExtension

from schema.query import CACHEABLE_ROOTS

__all__ = ["ResponseCacheability"]

# (the document's identity, the operation's name) -> (the document, whether its answer may be kept)
_decided: LRUCache[tuple[int, str | None], tuple[DocumentNode, bool]] = LRUCache(maxsize=1024)


def _lookups_only(document: DocumentNode, operation_name: str | None) -> bool:
    operation = get_operation_ast(document, operation_name)
    return (
        operation is not None
        and operation.operation is OperationType.QUERY
        and all(
            isinstance(selection, FieldNode) and selection.name.value in CACHEABLE_ROOTS and not selection.directives
            for selection in operation.selection_set.selections
        )
    )


class ResponseCacheability(SchemaExtension):
    """Sets ``context.response_cacheable`` for a query asking only applicant lookups."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        context = ec.context
        document = ec.graphql_document
        if document is not None and context is not None:
            key = (id(document), ec.operation_name)
            found = _decided.get(key)
            if found is None or found[0] is not document:
                found = _decided[key] = (document, _lookups_only(document, ec.operation_name))
            if found[1]:
                context.response_cacheable = True
        yield
