"""Nothing personal leaves unaudited: commit the request's disclosures before its response is sent.

After execution, the request's :class:`~auth.access.Access` knows every applicant whose personal data was released
(or refused) and the paths of those values in the response. This extension hands one audit entry per applicant to
the audit log, which returns only once they are committed (group commit: concurrent requests share a transaction).
If the audit store cannot commit, every personal value is withheld from the response -- set to null with an
``AUDIT_UNAVAILABLE`` error at its path -- and the rest of the answer stands (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from graphql.error import GraphQLError
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension

from auth.access import ResponsePath
from gateway.errors import AuditUnavailable

__all__ = ["AuditDisclosures", "withhold"]

logger = logging.getLogger("onewindow.audit")

WITHHELD = "personal data withheld: the audit store could not record this disclosure"


def withhold(data: Any, paths: Sequence[ResponsePath]) -> list[GraphQLError]:
    """Null the values at ``paths`` in a result's ``data``; one AUDIT_UNAVAILABLE error per value withheld."""
    errors = []
    for where in paths:
        path = where.as_list() if isinstance(where, Path) else where
        node = data
        for step in path[:-1]:
            node = node[step] if _has(node, step) else None
            if node is None:
                break
        if node is not None and _has(node, path[-1]):
            node[path[-1]] = None
            errors.append(GraphQLError(WITHHELD, path=list(path), extensions={"code": AuditUnavailable.code}))
    return errors


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


class AuditDisclosures(SchemaExtension):
    """Write the request's audit entries after execution; withhold personal values if that fails. With the audit
    turned off (``auth.audit: null``, refused in production) nothing is written."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        access = getattr(context, "access", None)
        if access is None:
            return
        entries, paths = access.drain()
        if entries and context.audit is not None:  # None: turned off (never in production)
            try:
                await context.audit.write(entries)
            except AuditUnavailable as exc:
                logger.error("audit unavailable, withholding %d personal values: %s", len(paths), exc.message)
                result = self.execution_context.result
                if result is not None:
                    errors = withhold(result.data, paths)
                    result.errors = [*(result.errors or []), *errors]
                return
        context.disclosed = tuple(entries)
