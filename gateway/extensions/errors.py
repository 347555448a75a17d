"""Every GraphQL error leaves with an ``extensions.code`` and one log line; unexpected ones are masked outside debug
mode.

Errors OneWindow raises on purpose (:mod:`gateway.errors`) already carry their code and, for a department failure,
the source name. Parse and validation errors get ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` unless a
scalar refused the value (``BAD_USER_INPUT``). Anything else is a bug: unless ``debug`` is on, it is answered as
``Unexpected error.`` with ``INTERNAL_SERVER_ERROR`` so no internals leak.

:class:`LoggedSchema` logs each error once, before it is masked (strawberry's ``process_errors``). An expected
outcome is one line, without a traceback, at INFO (a refusal, bad input) or WARNING (a department or the audit
store failed), naming its code, reason or source, the operation, the path and the request -- never the query text or
its variables::

    FORBIDDEN reason=PURPOSE_REQUIRED operation=Lookup path=person.maritalStatus request=4be0c2...
    SOURCE_UNAVAILABLE source=hrss detail="connection refused" operation=- path=person.socialInsurance request=...

A bug is logged at ERROR with its traceback, redacted like every record (:mod:`gateway.logs`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import strawberry
from graphql.error import GraphQLError
from graphql.execution.middleware import MiddlewareManager
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from gateway.errors import AuditUnavailable, ConfigError, Forbidden, GatewayError, SourceError
from gateway.extensions.runner import ExtensionsRunner

__all__ = ["ErrorCodes", "LoggedSchema", "log_error"]

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
        if self.debug:
            return _coded(error, "INTERNAL_SERVER_ERROR")
        return _coded(error, "INTERNAL_SERVER_ERROR", UNEXPECTED)

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._process(e) for e in errors]


def _expected_code(error: GraphQLError) -> str | None:
    """The code an error leaves with when it is an expected outcome; ``None`` for a bug (as :class:`ErrorCodes`
    decides)."""
    original = error.original_error
    if isinstance(original, GatewayError):
        return original.code
    code = (error.extensions or {}).get("code")
    if code:
        return str(code)
    if original is None:
        return "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
    return None


def _request_fields(execution_context: ExecutionContext | None) -> tuple[str, str]:
    """The operation's name and the request id, ``-`` when unknown."""
    if execution_context is None:
        return "-", "-"
    try:
        operation = execution_context.operation_name or "-"
    except Exception:  # no document (a parse error): no name to read
        operation = "-"
    access = getattr(execution_context.context, "access", None)
    return operation, str(getattr(access, "request_id", None) or "-")


def _quoted(value: str) -> str:
    return f'"{value}"' if not value or any(c in value for c in ' "=') else value


def log_error(error: GraphQLError, execution_context: ExecutionContext | None = None) -> None:
    """Log one GraphQL error: one line for an expected outcome, ERROR with the traceback for a bug."""
    operation, request = _request_fields(execution_context)
    path = ".".join(str(p) for p in error.path) if error.path else "-"
    where = {"operation": operation, "path": path, "request": request}
    code = _expected_code(error)
    if code is None:
        fields = " ".join(f"{k}={_quoted(v)}" for k, v in where.items())
        logger.error(
            "unexpected error %s",
            fields,
            exc_info=error.original_error,
            extra={"code": "INTERNAL_SERVER_ERROR", **where},
        )
        return
    original = error.original_error
    detail: dict[str, str] = {}
    level = logging.INFO
    if isinstance(original, Forbidden):
        detail["reason"] = str(original.reason)
    elif isinstance(original, SourceError):
        detail = {"source": original.source, "detail": original.reason}
        level = logging.WARNING
    elif isinstance(original, AuditUnavailable | ConfigError):
        level = logging.WARNING
    fields = " ".join(f"{k}={_quoted(v)}" for k, v in {**detail, **where}.items())
    logger.log(level, "%s %s", code, fields, extra={"code": code, **detail, **where})


class LoggedSchema(strawberry.Schema):
    """strawberry's schema, logging each error with :func:`log_error` instead of as an ERROR with its traceback, and
    running the extensions' hooks through :class:`~gateway.extensions.runner.ExtensionsRunner`."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            log_error(error, execution_context)

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return ExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def _get_middleware_manager(self, extensions: list[SchemaExtension]) -> MiddlewareManager:
        # graphql-core consults a middleware manager, even an empty one, for every field it resolves: when no
        # extension wraps resolvers (none of the gateway's does), it is given none at all
        if any(extension._implements_resolve() for extension in extensions):
            return super()._get_middleware_manager(extensions)
        return None  # type: ignore[return-value]  # what graphql-core's execute takes for "no middleware"
