"""The built-in unified model (``schema/builtin.yaml`` with the enums of :mod:`schema.enums`), and the catalog of a
configuration: the built-in model with the configuration's ``model:`` laid over it.

A source's ``provides`` section names fields of the catalog (``Person.maritalStatus``). At start-up every name,
code table and sub-field is checked against it; while answering, the mapping converts a department's raw value
into the type declared here.

    >>> CATALOG["Person"].fields["maritalStatus"].enum.__name__
    'MaritalStatus'
    >>> CATALOG["Person"].fields["degrees"].many
    True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

import yaml

from gateway.model import Catalog, EntitySpec, FieldSpec, ModelDeclaration, ValueType, build_catalog
from schema import enums

__all__ = [
    "APPLICANT",
    "APPLICANT_KINDS",
    "BUILTIN_MODEL",
    "CATALOG",
    "RESERVED_TYPES",
    "EntitySpec",
    "FieldSpec",
    "ValueType",
    "builtin_declaration",
    "catalog_for",
]

BUILTIN_MODEL = Path(__file__).resolve().parent / "builtin.yaml"

# Types the schema declares for itself, which a model may not redeclare.
RESERVED_TYPES = frozenset(
    {
        "Query",
        "Mutation",
        "PageInfo",
        "CaseConnection",
        "CaseEdge",
        "PurposeInput",
        "Viewer",
        "FieldProvenance",
        "AccessLogEntry",
        "AuditLogRecord",
        "AuditLogFilter",
        "ApplicantKind",
        "WarningState",
    }
)

# The built-in enums, given as code: resolvers and filters use them by name.
_ENUMS: Mapping[str, type[Enum]] = {
    cls.__name__: cls
    for cls in (
        enums.Gender,
        enums.MaritalStatus,
        enums.CaseStatus,
        enums.EventType,
        enums.WarningState,
        enums.LicenceStatus,
        enums.EntityStatus,
    )
}


@functools.cache
def builtin_declaration() -> ModelDeclaration:
    """The built-in model as declared in ``schema/builtin.yaml``."""
    return ModelDeclaration.model_validate(yaml.safe_load(BUILTIN_MODEL.read_text(encoding="utf-8")))


def catalog_for(model: ModelDeclaration | None = None) -> Catalog:
    """The built-in model with a configuration's ``model:`` section laid over it; errors name ``model.<key>``."""
    layers = [("<built-in model>", builtin_declaration())]
    if model is not None:
        layers.append(("model", model))
    return build_catalog(layers, enums=_ENUMS, reserved=RESERVED_TYPES - {"WarningState"})


CATALOG: Catalog = catalog_for()

# A reference to either a person or a legal entity, told apart by an ApplicantKind.
APPLICANT = "Applicant"
APPLICANT_KINDS: Mapping[str, str] = CATALOG.union_kinds(APPLICANT)
