"""The model declaration: resolved into one catalog, with start-up errors that name the key at fault."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.model import ModelDeclaration, SharingClass, ValueType, build_catalog
from schema.catalog import CATALOG, catalog_for

# A configuration with one department, to which each test adds the source it is about.
BASE: dict[str, Any] = {
    "sources": {
        "civil_affairs": {
            "kind": "rest",
            "department": "Civil Affairs Bureau",
            "base_url": "http://127.0.0.1:9",
            "queries": {"marriage": {"path": "/marriage/{key}"}},
            "provides": {"Person.maritalStatus": {"value": "MarriageStatus", "codes": {"10": "SINGLE"}}},
        },
    },
}


def _catalog(model: dict[str, Any]) -> Any:
    return catalog_for(ModelDeclaration.model_validate(model))


def test_a_deployment_adds_fields_objects_enums_and_keyed_entities() -> None:
    catalog = _catalog(
        {
            "code_tables": {"gjj": {"0": "NORMAL", "1": "SEALED", "2": "SEALED"}},
            "enums": {"FundStatus": {"code_table": "gjj"}},
            "objects": {"Fund": {"fields": {"balance": {"type": "Decimal"}, "status": {"type": "FundStatus"}}}},
            "entities": {
                "Person": {"fields": {"fund": {"type": "Fund"}, "parcels": {"type": "[Parcel]"}}},
                "Parcel": {"key": {"name": "parcelNumber"}, "fields": {"owner": {"type": "Person"}}},
            },
        }
    )
    fund = catalog["Person"].fields["fund"]
    assert fund.fields is not None
    assert fund.fields["balance"].value_type is ValueType.DECIMAL
    status_enum = fund.fields["status"].enum
    assert status_enum is not None
    assert list(status_enum.__members__) == ["NORMAL", "SEALED"]  # the code table's names, once each
    assert fund.sharing is SharingClass.CONDITIONAL  # added fields are conditional unless they say
    assert catalog["Person"].fields["name"].sharing is SharingClass.UNCONDITIONAL  # built-in ones keep theirs
    parcels = catalog["Person"].fields["parcels"]
    assert (parcels.ref, parcels.many) == ("Parcel", True)
    assert catalog["Parcel"].personal
    assert "Parcel" in catalog.personal
    assert "LegalEntity" not in catalog.personal
    assert set(CATALOG["Person"].fields) < set(catalog["Person"].fields)  # the built-in catalog is untouched


@pytest.mark.parametrize(
    ("model", "path", "says"),
    [
        ({"entities": {"Person": {"fields": {"fund": {"type": "Fnud"}}}}}, "entities.Person.fields.fund.type", "Fnud"),
        ({"entities": {"Person": {"fields": {"name": {"type": "String"}}}}}, "entities.Person.fields.name", "already"),
        ({"entities": {"Person": {"fields": {"x": {"type": "[Int"}}}}}, "entities.Person.fields.x.type", "[Name]"),
        ({"entities": {"Parcel": {"fields": {"area": {"type": "Int"}}}}}, "entities.Parcel.key", "new entity"),
        ({"entities": {"Person": {"key": {"name": "pid"}}}}, "entities.Person.key", "exists already"),
        ({"enums": {"S": {"code_table": "nope"}}}, "enums.S.code_table", "no code table"),
        ({"enums": {"Gender": {"values": ["X"]}}}, "enums.Gender", "already declared"),
        ({"objects": {"Query": {"fields": {"a": {"type": "Int"}}}}}, "objects.Query", "schema itself"),
        ({"enums": {"S": {"values": ["in use"]}}}, "enums.S", "enum value"),
        (
            {"objects": {"A": {"fields": {"b": {"type": "B"}}}, "B": {"fields": {"a": {"type": "[A]"}}}}},
            "objects.A",
            "contains itself",
        ),
        (
            {"objects": {"A": {"fields": {"who": {"type": "Person"}}}}},
            "objects.A.fields.who.type",
            "field of an entity",
        ),
        (
            {"entities": {"Person": {"fields": {"age": {"type": "Int", "computed": "age"}}}}},
            "entities.Person.fields.age.computed",
            "built in",
        ),
    ],
)
def test_a_wrong_declaration_fails_naming_the_key(model: dict[str, Any], path: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        _catalog(model)
    assert info.value.path == f"model.{path}"
    assert says in info.value.reason


def test_layers_are_resolved_in_order_and_later_layers_cannot_redeclare() -> None:
    base = ModelDeclaration.model_validate({"entities": {"Parcel": {"key": {"name": "n"}}}})
    again = ModelDeclaration.model_validate({"entities": {"Parcel": {"key": {"name": "m"}}}})
    with pytest.raises(ConfigError, match="exists already"):
        build_catalog([("first", base), ("second", again)])


def _with(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**document, **changes}


def test_the_configuration_is_checked_against_its_own_model() -> None:
    document = BASE
    variables: dict[str, str] = {}
    model = {"entities": {"Person": {"fields": {"receivesAllowance": {"type": "Boolean"}}}}}
    source = {
        "kind": "sql",
        "department": "民政局社会救助系统",
        "url": "sqlite+aiosqlite:///:memory:",
        "queries": {"active": {"table": "T_DB", "key_column": "SFZH"}},
        "provides": {"Person.receivesAllowance": {"value": "ZT", "codes": "allowance", "absent": False}},
    }
    tables = {"code_tables": {"allowance": {"1": "true"}}}
    config = parse_config(
        _with(document, model={**model, **tables}, sources={**document["sources"], "allowance": source}), variables
    )
    assert config.catalog["Person"].fields["receivesAllowance"].value_type is ValueType.BOOL
    assert config.sources["allowance"].provides["Person.receivesAllowance"].codes == {"1": "true"}

    # Without the model's field, the same source names a field that does not exist.
    with pytest.raises(ConfigError) as info:
        parse_config(_with(document, model=tables, sources={**document["sources"], "allowance": source}), variables)
    assert info.value.path == "sources.allowance.provides.Person.receivesAllowance"

    # A code table named but not declared.
    with pytest.raises(ConfigError) as info:
        parse_config(_with(document, model=model, sources={**document["sources"], "allowance": source}), variables)
    assert info.value.path == "sources.allowance.provides.Person.receivesAllowance.codes"

    # An absent value that is not a boolean.
    bad = {**source, "provides": {"Person.receivesAllowance": {"value": "ZT", "absent": "no"}}}
    with pytest.raises(ConfigError) as info:
        parse_config(_with(document, model=model, sources={**document["sources"], "allowance": bad}), variables)
    assert info.value.path == "sources.allowance.provides.Person.receivesAllowance.absent"

    # A computed field is the gateway's, not a source's.
    computed = {**source, "provides": {"Case.warningState": {"value": "ZT"}}}
    with pytest.raises(ConfigError, match="computed by the gateway"):
        parse_config(_with(document, sources={**document["sources"], "allowance": computed}), variables)


def test_a_raw_only_source_is_valid_and_one_with_nothing_is_not() -> None:
    document = BASE
    variables: dict[str, str] = {}
    source = {
        "kind": "sql",
        "department": "民政局社会救助系统",
        "url": "sqlite+aiosqlite:///:memory:",
        "queries": {"active": {"table": "T_DB", "key_column": "SFZH"}},
        "raw": {"entity": "Person"},
    }
    config = parse_config(_with(document, sources={**document["sources"], "allowance": source}), variables)
    assert config.sources["allowance"].raw is not None
    nothing = {k: v for k, v in source.items() if k != "raw"}
    with pytest.raises(ConfigError) as info:
        parse_config(_with(document, sources={**document["sources"], "allowance": nothing}), variables)
    assert info.value.path == "sources.allowance.provides"
    wrong = {**source, "raw": {"entity": "Parcel"}}
    with pytest.raises(ConfigError) as info:
        parse_config(_with(document, sources={**document["sources"], "allowance": wrong}), variables)
    assert info.value.path == "sources.allowance.raw.entity"
