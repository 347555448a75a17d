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


@strawberry.type
class Item:
    name: str
    note: str


@strawberry.type
class Shelf:
    @strawberry.field
    def items(self, search: str) -> list[Item]:
        return [Item(name=search, note="n")]


SEEN: list[Any] = []


@strawberry.type
class ShelfQuery:
    @strawberry.field
    def shelf(self, info: strawberry.Info, owner: str) -> Shelf:
        from schema.types import selected_fields_of, selections_of

        ours = selections_of(info)
        SEEN.append((ours, selected_fields_of(info), info.selected_fields))
        return Shelf()


SHELF_QUERY = """
query Q($owner: String!, $search: String!, $flag: Boolean!) {
  shelf(owner: $owner) {
    items(search: $search) { name ...Noted }
    ... on Shelf @include(if: $flag) { more: items(search: "x") { note } }
  }
  again: shelf(owner: $owner) { __typename }
}
fragment Noted on Item { note }
"""


def _names(selections: list[Any]) -> list[Any]:
    """What the gateway reads of selections: names, type conditions, directives present, and what is under them."""
    return [
        (
            type(s).__name__,
            getattr(s, "name", None),
            getattr(s, "type_condition", None),
            sorted(s.directives),
            _names(s.selections),
        )
        for s in selections
    ]


async def test_selections_are_strawberrys_without_argument_values_and_shaped_once() -> None:
    from gateway.extensions.documents import DocumentCache
    from gateway.extensions.errors import LoggedSchema

    schema = LoggedSchema(query=ShelfQuery, extensions=[lambda: DocumentCache(maxsize=8)])
    SEEN.clear()
    for owner in ("11010519491231002X", "110105188002290014"):
        variables = {"owner": owner, "search": f"secret-{owner}", "flag": True}
        result = await schema.execute(SHELF_QUERY, variable_values=variables)
        assert result.errors is None
    (first, requested, theirs), (again, _, _), (second, _, _), (second_again, _, _) = SEEN
    assert _names(first) == _names(theirs[0].selections)  # as strawberry reads the document
    assert requested == frozenset({"items"})
    assert _names(again) == [("SelectedField", "__typename", None, [], [])]
    assert second is first  # the same document: shaped once
    assert second_again is again
    assert "secret" not in repr(first)  # no request's values kept
    assert "11010519" not in repr(first)
    assert "secret" in repr(theirs)  # strawberry's own carry them
