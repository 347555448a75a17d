"""The GraphQL face of materials already held (:mod:`gateway.materials`): ``materials(serviceItem:, applicant:)``.

    {
      materials(serviceItem: "11010501300003", applicant: "11010519491231002X", purpose: {caseNumber: "BJ..."}) {
        name required status reason
        licence { type number issuer validUntil status }
        field summary
        provenance { source department fetchedAt }
      }
    }

Each material says whether the window may mark it "no need to submit" (``HELD``) and why not otherwise. The licence
is the unified ``Licence`` object, and the provenance the same ``FieldProvenance`` every entity gives.
"""

from __future__ import annotations

from typing import Any, Optional

import strawberry

from gateway.errors import BadUserInput
from gateway.keys import parse_applicant
from gateway.mapping import CHINA_STANDARD_TIME
from gateway.materials import LICENCE_OBJECT, MaterialFinding, MaterialStatus, find_materials, summarize
from schema.context import GatewayInfo
from schema.purposes import PurposeInput, purpose_of
from schema.types import FieldProvenance, SchemaTypes

__all__ = ["MaterialStatusEnum", "material_type", "read_materials"]

MaterialStatusEnum = strawberry.enum(
    MaterialStatus,
    name="MaterialStatus",
    description=(
        "HELD: government holds it in force, no need to submit. NOT_HELD: no department holds it (or only one "
        "suspended or revoked). EXPIRED: held but expired, submit a current one. REFUSED: the caller may not read "
        "it (reason says why). NOT_CONNECTED: matched to no department system, always to submit. UNAVAILABLE: the "
        "department did not answer."
    ),
)


def material_type(types: SchemaTypes) -> type[Any]:
    """``Material``, made for this schema's ``Licence`` type."""
    licence = types.objects[LICENCE_OBJECT]
    fields: dict[str, tuple[Any, Any]] = {
        "name": (str, strawberry.field(description="The material as the service item's guide names it.")),
        "required": (bool, strawberry.field(description="False for a material asked only in some situations.")),
        "status": (MaterialStatusEnum, strawberry.field(description="Whether the window may mark it held.")),
        "reason": (str, strawberry.field(description="Why this status, in words for the window.")),
        "licence": (
            Optional[licence],  # noqa: UP045 - a type made at run time
            strawberry.field(description="The electronic licence found (held, expired or not in force)."),
        ),
        "field": (
            Optional[str],  # noqa: UP045
            strawberry.field(description="The unified field the material is matched to, e.g. Person.degrees."),
        ),
        "summary": (
            Optional[str],  # noqa: UP045
            strawberry.field(description="The matched field's value in one line, as released to the caller."),
        ),
        "provenance": (
            Optional[FieldProvenance],  # noqa: UP045
            strawberry.field(description="Where the licence or the field's value came from."),
        ),
    }
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": "Material"}
    namespace["__annotations__"] = {attr: annotation for attr, (annotation, _) in fields.items()}
    namespace.update({attr: value for attr, (_, value) in fields.items()})
    description = "One material a service item asks for, and whether government already holds it for the applicant."
    cls = strawberry.type(type("Material", (), namespace), name="Material", description=description)
    cls.LICENCE = licence  # type: ignore[attr-defined]  # builds the licence object from the record released
    return cls


async def read_materials(
    info: GatewayInfo, material: type[Any], service_item: str, applicant: str, stated: PurposeInput | None
) -> list[Any]:
    """The root field's work: the item's list from configuration, each material read through the request's access."""
    code = service_item.strip()
    items = info.context.sources.sources.config.service_materials
    item = items.get(code)
    if item is None:
        raise BadUserInput(f"no materials are configured for service item {code!r}")
    entity, key = parse_applicant(applicant)
    if item.entity is not None and item.entity != entity:
        raise BadUserInput(f"service item {code} is applied for by a {item.entity}, not a {entity}")
    purpose = purpose_of(stated, key)
    today = info.context.now.astimezone(CHINA_STANDARD_TIME).date()
    findings = await find_materials(
        item, entity, key, info.context.access, purpose=purpose, today=today, path=info.path.as_list()
    )
    return [_material(material, found) for found in findings]


def _material(material: type[Any], found: MaterialFinding) -> Any:
    spec = found.material
    provenance = found.provenance
    return material(
        name=spec.name,
        required=spec.required,
        status=found.status,
        reason=found.reason,
        licence=_licence_object(material, found),
        field=f"{spec.entity}.{spec.field}" if spec.field is not None else None,
        summary=summarize(found.value) if found.value is not None else None,
        provenance=None
        if provenance is None
        else FieldProvenance(
            field=provenance.field,
            source=provenance.source,
            department=provenance.department,
            fetched_at=provenance.fetched_at,
            stale=provenance.stale,
            age=provenance.age,
            masked=found.masked,
        ),
    )


def _licence_object(material: type[Any], found: MaterialFinding) -> Any:
    if found.licence is None:
        return None
    return material.LICENCE.from_values(dict(found.licence))
