"""Mark the requests whose whole answer may be kept (see :mod:`cache.responses`).

A query qualifies when every field at its root is one of :data:`schema.query.CACHEABLE_ROOTS`, without
directives; the view still keeps the answer only if it has no errors and every value came fresh from the cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FieldNode, get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.query import CACHEABLE_ROOTS

__all__ = ["ResponseCacheability"]


class ResponseCacheability(SchemaExtension):
    """Sets ``context.response_cacheable`` for a query asking only applicant lookups."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        context = ec.context
        if ec.operation_type is OperationType.QUERY and ec.graphql_document is not None and context is not None:
            operation = get_operation_ast(ec.graphql_document, ec.operation_name)
            if operation is not None and all(
                isinstance(selection, FieldNode)
                and selection.name.value in CACHEABLE_ROOTS
                and not selection.directives
                for selection in operation.selection_set.selections
            ):
                context.response_cacheable = True
        yield
