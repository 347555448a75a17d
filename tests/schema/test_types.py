"""schema/types.py: what the schema hands graphql-core directly answers as strawberry's own would."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import GraphQLUnionType

from schema.query import build_schema


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema()


def applicant_union(schema: strawberry.Schema) -> GraphQLUnionType:
    union = schema._schema.type_map["Applicant"]
    assert isinstance(union, GraphQLUnionType)
    assert union.resolve_type is not None
    return union


def entity(schema: strawberry.Schema, name: str) -> Any:
    """An object of the schema's own class for entity ``name``."""
    cls = schema._schema.type_map[name].extensions["strawberry-definition"].origin
    return cls(key="k", requested=frozenset(), purpose=None)


@pytest.mark.parametrize("member", ["Person", "LegalEntity"])
def test_a_union_of_entities_names_the_member_of_the_entitys_class(schema: strawberry.Schema, member: str) -> None:
    union = applicant_union(schema)
    assert union.resolve_type is not None
    assert union.resolve_type(entity(schema, member), None, union) == member  # type: ignore[arg-type]


def test_anything_else_is_left_to_strawberry(schema: strawberry.Schema) -> None:
    union = applicant_union(schema)

    class Info:
        field_name = "applicant"

    class Stranger:
        """An object no member of the union was made for."""

    with pytest.raises(Exception, match="applicant"):  # strawberry's own refusal of a wrong return type
        union.resolve_type(Stranger(), Info(), union)  # type: ignore[arg-type,misc]
