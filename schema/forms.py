"""The GraphQL shape of a prefilled form (:mod:`gateway.prefill`): ``prefill(form:, applicant:, purpose:)``, and
``forms``, the configured forms (what a window front end offers to prefill for a service item)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from strawberry.scalars import JSON

from gateway.errors import BadUserInput
from gateway.prefill import FieldStatus, FormPrefill, prefill
from schema.context import GatewayInfo
from schema.purposes import PurposeInput, purpose_of

__all__ = ["FormInfo", "FormPrefillResult", "PrefillFieldResult", "PrefillStatus", "list_forms", "prefill_form"]

PrefillStatus = strawberry.enum(FieldStatus, name="PrefillStatus", description="What could be done for a field.")


@strawberry.type(description="Where a prefilled value came from (one per department read along its path).")
class PrefillProvenance:
    field: str
    source: str
    department: str
    fetched_at: dt.datetime
    stale: bool


@strawberry.type(description="One department's value of a field, when departments disagree (conflict mode).")
class DepartmentValue:
    source: str
    department: str
    value: JSON | None


@strawberry.type(description="One labelled field of a form, as prefilled.")
class PrefillFieldResult:
    label: str
    path: str = strawberry.field(description="The unified field path, e.g. Person.spouse.name.")
    required: bool
    status: PrefillStatus  # type: ignore[valid-type]
    value: JSON | None = strawberry.field(
        description="The value as released to the caller (masked if the policy says)."
    )
    reason: str | None = strawberry.field(description="REFUSED: the policy's reason; UNAVAILABLE: the error code.")
    detail: str
    sources: list[str] = strawberry.field(description="The sources asked (NO_RECORD) or that answered.")
    masked: bool
    provenance: list[PrefillProvenance]
    values: list[DepartmentValue] = strawberry.field(description="CONFLICT: each department's value.")


@strawberry.type(description="A form of a service item, prefilled for one applicant.")
class FormPrefillResult:
    form: str
    title: str
    service_item: str
    applicant: str
    fields: list[PrefillFieldResult]


@strawberry.type(description="A configured form (forms:): what prefill(form:) takes, and the service item it is for.")
class FormInfo:
    name: str = strawberry.field(description="The form's name, as prefill(form:) takes it.")
    title: str
    service_item: str = strawberry.field(description="The code of the service item the form is for.")
    applicant: str = strawberry.field(description="The applicant entity: Person or LegalEntity.")


def list_forms(info: GatewayInfo) -> list[FormInfo]:
    """The ``forms`` root field: every configured form, by name (configuration only: nobody's data is read)."""
    forms = info.context.sources.sources.config.compiled_forms
    return [
        FormInfo(
            name=name,
            title=compiled.template.title,
            service_item=compiled.template.service_item,
            applicant=compiled.template.applicant,
        )
        for name, compiled in sorted(forms.items())
    ]


async def prefill_form(
    info: GatewayInfo, form: str, applicant: str, stated: PurposeInput | None, conflicts: bool | None
) -> FormPrefillResult:
    """The ``prefill`` root field: the form named ``form`` for ``applicant`` under the purpose ``stated``."""
    context = info.context
    config = context.sources.sources.config
    compiled = config.compiled_forms.get(form)
    if compiled is None:
        raise BadUserInput(f"no form named {form!r}; configured: {', '.join(config.compiled_forms) or 'none'}")
    key = applicant_key(config.catalog[compiled.template.applicant].parse_key, applicant)
    purpose = purpose_of(stated, key)
    result = await prefill(
        context.access, compiled, key, purpose=purpose, conflicts=conflicts, path=info.path.as_list()
    )
    return to_graphql(result)


def applicant_key(parse: Any, applicant: str) -> str:
    try:
        return str(parse(applicant))
    except (ValueError, BadUserInput) as exc:
        raise BadUserInput(f"applicant {applicant!r} is not a valid key: {exc}") from None


def to_graphql(result: FormPrefill) -> FormPrefillResult:
    return FormPrefillResult(
        form=result.form,
        title=result.title,
        service_item=result.service_item,
        applicant=result.applicant,
        fields=[
            PrefillFieldResult(
                label=f.label,
                path=f.path,
                required=f.required,
                status=f.status,
                value=f.value,
                reason=f.reason,
                detail=f.detail,
                sources=list(f.sources),
                masked=f.masked,
                provenance=[
                    PrefillProvenance(
                        field=p.field, source=p.source, department=p.department, fetched_at=p.fetched_at, stale=p.stale
                    )
                    for p in f.provenance
                ],
                values=[DepartmentValue(source=v.source, department=v.department, value=v.value) for v in f.values],
            )
            for f in result.fields
        ],
    )
