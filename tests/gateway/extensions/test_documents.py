"""gateway/extensions/documents.py: each distinct document is parsed and validated once, with the same errors as
strawberry's own stages, and a validation is never taken for another schema's."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.schema import schema as strawberry_schema

from gateway.extensions import documents
from gateway.extensions.documents import DocumentCache
from gateway.extensions.errors import LoggedSchema


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class OtherQuery:
    @strawberry.field
    def goodbye(self) -> str:
        return "moon"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The documents validated, in order."""
    seen: list[Any] = []

    def counted(schema: Any, document: Any, rules: Any) -> Any:
        seen.append(document)
        return strawberry_schema.validate_document(schema, document, rules)

    monkeypatch.setattr(documents, "validate_document", counted)
    return seen


def cached(query: type) -> strawberry.Schema:
    return LoggedSchema(query=query, extensions=[lambda: DocumentCache(maxsize=8)])


async def test_a_document_is_parsed_and_validated_once(validations: list[Any]) -> None:
    schema = cached(Query)
    for _ in range(3):
        result = await schema.execute("{ hello }")
        assert result.data == {"hello": "world"}
    assert len(validations) == 1
    await schema.execute("{ hello __typename }")
    assert len(validations) == 2  # another text, another document


@pytest.mark.parametrize("query", ["{ hello }", "{ nope }", "{ hello", "query A { hello } query A { hello }"])
async def test_answers_and_errors_are_strawberrys(query: str) -> None:
    ours = await cached(Query).execute(query)
    theirs = await strawberry.Schema(query=Query).execute(query)
    assert ours.data == theirs.data
    assert [e.message for e in ours.errors or []] == [e.message for e in theirs.errors or []]


async def test_an_invalid_document_stays_invalid(validations: list[Any]) -> None:
    schema = cached(Query)
    for _ in range(2):
        result = await schema.execute("{ nope }")
        assert result.errors
        assert "Cannot query field 'nope'" in result.errors[0].message
    assert len(validations) == 1


async def test_each_schema_validates_the_same_document_itself(validations: list[Any]) -> None:
    first, second = cached(Query), cached(OtherQuery)
    assert (await first.execute("{ hello }")).data == {"hello": "world"}
    refused = await second.execute("{ hello }")  # the same parsed document, valid for the first schema only
    assert refused.errors
    assert "Cannot query field 'hello'" in refused.errors[0].message
    assert len(validations) == 2
    assert validations[0] is validations[1]  # one parsed document for one text
