"""The GraphQL schema is generated from the model declaration: every declared field is in it with its declared type,
and nothing else is, for the built-in model and for the model the onboarding configurations add.

The extended schema (built-in model plus the three onboarded departments' additions) is kept in
``tests/schema/extended.graphql`` so that a change to what configuration can add shows in review. After an
intended change: ONEWINDOW_UPDATE_SNAPSHOT=1 pytest tests/schema/test_model_agreement.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLUnionType, get_named_type

from gateway.config import merge_documents
from gateway.model import Catalog, FieldSpec, ModelDeclaration
from schema.catalog import CATALOG, catalog_for
from schema.query import build_schema

ONBOARDING = Path(__file__).resolve().parents[1] / "onboarding"
EXTENDED_SNAPSHOT = Path(__file__).resolve().parent / "extended.graphql"
# Fields every entity has besides its declared ones.
_ENTITY_EXTRAS = {"provenance", "raw"}


def _onboarded_model() -> ModelDeclaration:
    merged: dict[str, Any] = {}
    for name in ("housing_fund.yaml", "real_estate.yaml", "allowance.yaml"):
        document = yaml.safe_load((ONBOARDING / name).read_text(encoding="utf-8"))
        merged = merge_documents(merged, document.get("model", {}))
    return ModelDeclaration.model_validate(merged)


def _type_of(field_type: Any) -> tuple[str, bool]:
    """A GraphQL field type as (named type, is a list)."""
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    return get_named_type(inner).name, isinstance(inner, GraphQLList)


def _assert_agrees(schema: GraphQLSchema, catalog: Catalog) -> None:
    def check(type_name: str, fields: dict[str, FieldSpec], extras: set[str]) -> None:
        graphql_type = schema.type_map.get(type_name)
        assert isinstance(graphql_type, GraphQLObjectType), f"{type_name} is not an object type of the schema"
        assert set(graphql_type.fields) - extras == set(fields), f"{type_name}'s fields differ from the model"
        for name, spec in fields.items():
            assert _type_of(graphql_type.fields[name].type) == (spec.type_name, spec.many), f"{type_name}.{name}"
            if spec.fields is not None:
                check(spec.type_name, dict(spec.fields), set())

    for entity in catalog.values():
        check(entity.name, dict(entity.fields), {*_ENTITY_EXTRAS, entity.key})
        key = schema.type_map[entity.name].fields[entity.key]  # type: ignore[attr-defined]
        assert _type_of(key.type) == (entity.key_type, False)
    for name, union in catalog.unions.items():
        graphql_union = schema.type_map[name]
        assert isinstance(graphql_union, GraphQLUnionType)
        assert {t.name for t in graphql_union.types} == set(union.members.values())
    for name, enum in catalog.enums.items():
        assert set(schema.type_map[name].values) == set(enum.__members__)  # type: ignore[attr-defined]


@pytest.mark.parametrize("extended", [False, True], ids=["built-in", "onboarded"])
def test_the_schema_and_the_model_agree_on_every_field(extended: bool) -> None:
    catalog = catalog_for(_onboarded_model()) if extended else CATALOG
    _assert_agrees(build_schema(catalog=catalog)._schema, catalog)


def test_a_field_missing_from_the_schema_is_caught() -> None:
    catalog = catalog_for(_onboarded_model())
    narrower = catalog_for(ModelDeclaration())
    with pytest.raises(AssertionError, match="fields differ"):
        _assert_agrees(build_schema(catalog=narrower)._schema, catalog)


def test_extended_schema_matches_snapshot() -> None:
    printed = str(build_schema(catalog=catalog_for(_onboarded_model()))) + "\n"
    if os.environ.get("ONEWINDOW_UPDATE_SNAPSHOT") == "1":
        EXTENDED_SNAPSHOT.write_text(printed, encoding="utf-8")
    assert printed == EXTENDED_SNAPSHOT.read_text(encoding="utf-8"), "extended schema changed: review the snapshot"
