"""Every GraphQL error leaves with an ``extensions.code``; unexpected ones are masked outside debug mode.

Errors OneWindow raises on purpose (:mod:`gateway.errors`) already carry their code and, for a department failure,
the source name. Parse and validation errors get ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` unless a
scalar refused the value (``BAD_USER_INPUT``). Anything else is a bug: it is logged with its traceback and, unless
``debug`` is on, answered as ``Unexpected error.`` with ``INTERNAL_SERVER_ERROR`` so no internals leak.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import GatewayError

__all__ = ["ErrorCodes"]

logger = logging.getLogger("onewindow.errors")

UNEXPECTED = "Unexpected error."


def _coded(error: GraphQLError, code: str, message: str | None = None) -> GraphQLError:
    return GraphQLError(
        message=error.message if message is None else message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None if message is not None else error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


class ErrorCodes(SchemaExtension):
    """Give every error a code; mask unexpected errors unless ``debug``."""

    def __init__(self, *, debug: bool = False) -> None:
        self.debug = debug

    def _process(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GatewayError):
            if (error.extensions or {}).get("code") == original.code:
                return error
            return GraphQLError(
                message=error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=original,
                extensions={**(error.extensions or {}), **original.extensions},
            )
        if (error.extensions or {}).get("code"):
            return error
        if original is None:
            if error.message.startswith("Syntax Error"):
                return _coded(error, "GRAPHQL_PARSE_FAILED")
            return _coded(error, "GRAPHQL_VALIDATION_FAILED")
        logger.error("unexpected error at %s", error.path, exc_info=original)
        if self.debug:
            return _coded(error, "INTERNAL_SERVER_ERROR")
        return _coded(error, "INTERNAL_SERVER_ERROR", UNEXPECTED)

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._process(e) for e in errors]
