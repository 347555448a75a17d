"""gateway/extensions/responses.py: a query asking only applicant lookups is marked as one whose answer may be kept;
the decision, made once per parsed document and operation, follows the operation each request names."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import strawberry

from gateway.extensions.documents import DocumentCache
from gateway.extensions.errors import LoggedSchema
from gateway.extensions.responses import ResponseCacheability


@dataclass
class Context:
    response_cacheable: bool = False


@strawberry.type
class Query:
    @strawberry.field
    def person(self) -> str:
        return "a person"

    @strawberry.field
    def cases(self) -> str:
        return "a listing"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def person(self) -> str:
        return "written"


SCHEMA = LoggedSchema(
    query=Query, mutation=Mutation, extensions=[ResponseCacheability, lambda: DocumentCache(maxsize=8)]
)
DOCUMENT = "query Lookup { person } query Listing { cases person } mutation Write { person }"


async def cacheable(query: str, operation_name: str | None = None) -> bool:
    context = Context()
    result = await SCHEMA.execute(query, context_value=context, operation_name=operation_name)
    assert result.errors is None
    return context.response_cacheable


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ person }", True),
        ("{ person __typename }", True),
        ("{ person cases }", False),
        ("{ person @include(if: true) }", False),
        ("{ ... on Query { person } }", False),
    ],
)
async def test_only_lookups_at_the_root_are_cacheable(query: str, expected: bool) -> None:
    assert await cacheable(query) is expected
    assert await cacheable(query) is expected  # decided once, answered the same again


async def test_each_operation_of_one_document_is_decided_apart() -> None:
    for _ in range(2):
        assert await cacheable(DOCUMENT, "Lookup") is True
        assert await cacheable(DOCUMENT, "Listing") is False
        assert await cacheable(DOCUMENT, "Write") is False  # a mutation is never kept
