"""Form templates as configuration: a form of a service item, its labelled fields, each a path in the unified model.

A window's application form is declared once, in the ``forms:`` section, and prefilled from the departments
(:mod:`gateway.prefill`). A field's ``path`` starts at the form's applicant entity and may pass through objects
(``Person.socialInsurance.city``) and relations to other entities (``Person.spouse.name``)::

    forms:
      teacher_qualification:
        title: 教师资格认定申请表
        service_item: "11010500900002"
        applicant: Person
        fields:
          姓名: {path: Person.name, required: true}
          参保城市: {path: Person.socialInsurance.city}

Paths are checked against the catalog at start-up; an error names ``forms.<form>.fields.<label>.path``.

    >>> from schema.catalog import CATALOG
    >>> fields = {"参保城市": {"path": "Person.socialInsurance.city"}}
    >>> form = FormTemplate.model_validate({"service_item": "11010500400002", "fields": fields})
    >>> [(hop.entity, hop.field, hop.within) for hop in compile_form("f", form, CATALOG).fields[0].hops]
    [('Person', 'socialInsurance', ('city',))]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from gateway.durations import Strict
from gateway.errors import ConfigError
from gateway.model import Catalog, FieldSpec

__all__ = [
    "CompiledField",
    "CompiledForm",
    "FieldHop",
    "FormField",
    "FormTemplate",
    "compile_form",
    "compile_forms",
    "compile_path",
]


class FormField(Strict):
    """One labelled field of a form: where its value lives in the unified model, and whether the form needs it."""

    path: str
    required: bool = False
    description: str = ""


class FormTemplate(Strict):
    """A form of one service item (its code in the service catalogue), filled for one applicant entity. With
    ``conflicts`` every department providing a field is asked and disagreements are flagged."""

    title: str = ""
    service_item: str
    applicant: Literal["Person", "LegalEntity"] = "Person"
    conflicts: bool = False
    fields: dict[str, FormField] = Field(min_length=1)


@dataclass(frozen=True)
class FieldHop:
    """One read of a path: ``field`` of ``entity`` (asked of the departments), then ``within`` its object value."""

    entity: str
    field: str
    spec: FieldSpec
    within: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompiledField:
    label: str
    path: str
    required: bool
    hops: tuple[FieldHop, ...]


@dataclass(frozen=True)
class CompiledForm:
    name: str
    template: FormTemplate
    fields: tuple[CompiledField, ...]


def compile_forms(forms: Mapping[str, FormTemplate], catalog: Catalog) -> dict[str, CompiledForm]:
    """Every form with its paths resolved against ``catalog``; raises :class:`ConfigError` naming the path at fault."""
    return {name: compile_form(name, form, catalog) for name, form in forms.items()}


def compile_form(name: str, form: FormTemplate, catalog: Catalog) -> CompiledForm:
    fields = tuple(
        CompiledField(label, f.path, f.required, _hops(f"forms.{name}.fields.{label}.path", f.path, form, catalog))
        for label, f in form.fields.items()
    )
    return CompiledForm(name, form, fields)


def _hops(where: str, path: str, form: FormTemplate, catalog: Catalog) -> tuple[FieldHop, ...]:
    if path.split(".")[0] != form.applicant:
        raise ConfigError(where, f"{path!r} must start at the form's applicant, {form.applicant}")
    return compile_path(where, path, catalog)


def compile_path(where: str, path: str, catalog: Catalog) -> tuple[FieldHop, ...]:
    """The reads of a unified field path starting at an entity (``Person.spouse.name``: the person's ``spouse``,
    then that person's ``name``); raises :class:`ConfigError` at ``where`` when the model has no such path."""
    root, *steps = path.split(".")
    if root not in catalog:
        raise ConfigError(where, f"{path!r} must start at an entity of the model ({', '.join(catalog.entities)})")
    if not steps:
        raise ConfigError(where, f"{path!r} names no field of {root}")
    hops: list[FieldHop] = []
    entity: str = root
    index = 0
    while index < len(steps):
        name = steps[index]
        spec = catalog.field(entity, name)
        if spec is None:
            known = ", ".join(sorted(catalog[entity].fields))
            raise ConfigError(where, f"{entity} has no field {name!r}; known: {known}")
        index += 1
        within: list[str] = []
        inner = spec
        while inner.is_object and index < len(steps):
            assert inner.fields is not None
            sub = inner.fields.get(steps[index])
            if sub is None:
                raise ConfigError(
                    where, f"{inner.type_name} has no field {steps[index]!r}; known: {', '.join(inner.fields)}"
                )
            within.append(steps[index])
            inner, index = sub, index + 1
        hops.append(FieldHop(entity, name, spec, tuple(within)))
        if index < len(steps):
            if spec.ref is None or spec.ref not in catalog:
                raise ConfigError(where, f"{'.'.join([entity, name, *within])} has no fields to follow")
            if spec.many:
                raise ConfigError(where, f"{entity}.{name} is a list of {spec.ref}: a form field holds one value")
            entity = spec.ref
        elif spec.ref is not None:
            raise ConfigError(where, f"{entity}.{name} is a {spec.ref}: name one of its fields ({path}.name, ...)")
    return tuple(hops)
