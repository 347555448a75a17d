"""Materials already held: a service item's required materials, and which of them government holds for an applicant.

A service item (事项) asks its applicant for materials: an ID card copy, a household register, a business licence.
Where a department system already holds one -- as an electronic licence (电子证照) or as a unified field -- the
window marks it "no need to submit". The ``materials:`` section of a configuration lists them per item code::

    materials:
      "11010501300003":                              # 最低生活保障审核确认
        居民身份证: {licence_type: 居民身份证}         # held if the licence library has a valid one
        户口簿: {field: Person.householdNumber}       # held if the household registry has a record
        收入证明: {}                                   # matched to nothing: always to submit
        婚姻状况证明: {licence_type: 结婚证, required: false}
      "11010500100002":                              # 企业变更登记
        营业执照: {licence_type: 营业执照}
        法定代表人身份证: {licence_type: 居民身份证, holder: LegalEntity.legalRepresentative}

``licence_type`` is compared with ``Licence.type`` of the applicant's ``licences`` (or those of the person a
``holder`` relation names); ``field`` is a unified field path checked against the catalog at start-up. A licence
counts as held only while in force: an expired one is ``EXPIRED`` ("submit a current one"), a suspended or revoked
one is ``NOT_HELD`` with the reason. Every value is read through the request's :class:`~auth.access.Access`, so
the policy, the purpose, masking and the audit apply to it as to any field; a refusal is ``REFUSED`` with the
policy's reason.

    >>> from schema.catalog import CATALOG
    >>> items = compile_materials({"1": {"身份证": {"licence_type": "居民身份证"}, "收入证明": None}}, CATALOG)
    >>> [(m.name, m.licence_type) for m in items["1"].materials]
    [('身份证', '居民身份证'), ('收入证明', None)]
    >>> compile_materials({"1": {"学历证书": {"field": "Person.diploma"}}}, CATALOG)
    Traceback (most recent call last):
    ...
    gateway.errors.ConfigError: materials.1.学历证书.field: Person has no field 'diploma'; ...
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from gateway.durations import Strict
from gateway.errors import AuditUnavailable, ConfigError, Forbidden, SourceError
from gateway.model import Catalog

if TYPE_CHECKING:  # the configuration imports this module: what builds on the configuration is only named here
    from auth.access import Access, Purpose
    from gateway.sources import Provenance

__all__ = [
    "APPLICANT_ENTITIES",
    "ItemMaterials",
    "Material",
    "MaterialDeclaration",
    "MaterialFinding",
    "MaterialStatus",
    "MaterialsSection",
    "compile_materials",
    "find_materials",
    "summarize",
]

# Who applies for a service item, and the field of each that holds their electronic licences.
APPLICANT_ENTITIES = ("Person", "LegalEntity")
LICENCES_FIELD = "licences"
LICENCE_OBJECT = "Licence"


class MaterialDeclaration(Strict):
    """One material as written: matched to an electronic licence type, to a unified field, or to nothing."""

    licence_type: str | None = Field(None, min_length=1)
    field: str | None = Field(None, min_length=1)
    # A relation of the applicant whose licence this is (``LegalEntity.legalRepresentative``): 法定代表人身份证.
    holder: str | None = Field(None, min_length=1)
    required: bool = True

    @model_validator(mode="after")
    def _one_match(self) -> MaterialDeclaration:
        if self.licence_type is not None and self.field is not None:
            raise ValueError("match a material to a 'licence_type' or to a 'field', not both")
        if self.holder is not None and self.licence_type is None:
            raise ValueError("'holder' names whose licence it is: give 'licence_type' with it")
        return self


def _codes_are_strings(value: Any) -> Any:
    if isinstance(value, Mapping):
        for code in value:
            if not isinstance(code, str):
                raise ValueError(f'service item code {code!r} is not a string: quote it ("{code}")')
    return value


MaterialsSection = Annotated[dict[str, dict[str, MaterialDeclaration | None]], BeforeValidator(_codes_are_strings)]
"""The ``materials:`` section as read: item code -> material name -> declaration (``None``: matched to nothing)."""


@dataclass(frozen=True)
class Material:
    """One required (or optional) material of a service item, resolved against the catalog."""

    name: str
    required: bool = True
    licence_type: str | None = None
    # ``field``: a unified field of ``entity`` (the applicant); ``holder``: a relation of ``entity`` to a person.
    entity: str | None = None
    field: str | None = None
    holder: str | None = None

    @property
    def connected(self) -> bool:
        return self.licence_type is not None or self.field is not None


@dataclass(frozen=True)
class ItemMaterials:
    """A service item's materials, in the order the configuration lists them. ``entity``: the kind of applicant
    the list reads fields of (``Person``), when it reads any."""

    code: str
    materials: tuple[Material, ...]
    entity: str | None = None


class MaterialStatus(StrEnum):
    """Whether the window may mark a material "no need to submit"."""

    HELD = "HELD"
    NOT_HELD = "NOT_HELD"
    EXPIRED = "EXPIRED"
    REFUSED = "REFUSED"
    NOT_CONNECTED = "NOT_CONNECTED"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class MaterialFinding:
    """What government holds of one material for one applicant, and why. ``licence``: the licence record found
    (as released to the caller); ``value``: the matched field's value; ``provenance``: where either came from."""

    material: Material
    status: MaterialStatus
    reason: str
    licence: Mapping[str, Any] | None = None
    value: Any = None
    provenance: Provenance | None = None
    masked: bool = False


# -- the configuration -------------------------------------------------------------------------------------------


def compile_materials(declared: Mapping[Any, Any], catalog: Catalog) -> dict[str, ItemMaterials]:
    """The ``materials:`` section, checked against ``catalog``; errors name ``materials.<item>.<material>.<key>``."""
    items: dict[str, ItemMaterials] = {}
    for code, listed in declared.items():
        where = f"materials.{code}"
        if not isinstance(code, str) or not code.strip():
            raise ConfigError(where, 'a service item code is a string: quote it ("11010501300003")')
        if not isinstance(listed, Mapping) or not listed:
            raise ConfigError(where, "list the item's materials: {<material name>: {licence_type: ...} | {field: ...}}")
        materials = []
        entities: dict[str, str] = {}
        for name, given in listed.items():
            mwhere = f"{where}.{name}"
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(mwhere, "a material is named by a non-empty string")
            try:
                decl = MaterialDeclaration.model_validate(given or {})
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"{mwhere}.{loc}" if loc else mwhere, first["msg"]) from None
            material = _material(mwhere, name, decl, catalog)
            entity = material.entity
            if entity is not None:
                for other, seen in entities.items():
                    if other != entity:
                        raise ConfigError(mwhere, f"reads a {entity} but {seen} reads a {other}")
                entities.setdefault(entity, mwhere)
            materials.append(material)
        items[code] = ItemMaterials(code, tuple(materials), next(iter(entities), None))
    return items


def _material(where: str, name: str, decl: MaterialDeclaration, catalog: Catalog) -> Material:
    if decl.field is not None:
        entity, field_name = _applicant_field(f"{where}.field", decl.field, catalog)
        spec = catalog[entity].fields[field_name]
        if spec.ref is not None:
            raise ConfigError(f"{where}.field", f"{decl.field} is a relation; a material is a record: name one")
        return Material(name, decl.required, entity=entity, field=field_name)
    if decl.licence_type is None:
        return Material(name, decl.required)
    for applicant in APPLICANT_ENTITIES:
        _licences_of(f"{where}.licence_type", applicant, catalog)
    if decl.holder is None:
        return Material(name, decl.required, licence_type=decl.licence_type)
    entity, relation = _applicant_field(f"{where}.holder", decl.holder, catalog)
    spec = catalog[entity].fields[relation]
    if spec.ref is None or spec.many or spec.ref not in catalog:
        raise ConfigError(f"{where}.holder", f"{decl.holder} is not a relation to one entity")
    _licences_of(f"{where}.holder", spec.ref, catalog)
    return Material(name, decl.required, licence_type=decl.licence_type, entity=entity, holder=relation)


def _applicant_field(where: str, path: str, catalog: Catalog) -> tuple[str, str]:
    entity, _, field_name = path.partition(".")
    if entity not in APPLICANT_ENTITIES or entity not in catalog:
        raise ConfigError(where, f"{path!r}: write <Applicant>.<field>, the applicant one of {APPLICANT_ENTITIES}")
    spec = catalog.field(entity, field_name)
    if spec is None:
        known = ", ".join(f for f, s in catalog[entity].fields.items() if s.computed is None)
        raise ConfigError(where, f"{entity} has no field {field_name!r}; known: {known}")
    if spec.computed is not None:
        raise ConfigError(where, f"{path} is computed by the gateway, not held by a department")
    return entity, field_name


def _licences_of(where: str, entity: str, catalog: Catalog) -> None:
    spec = catalog.field(entity, LICENCES_FIELD)
    if spec is None or not spec.many or spec.type_name != LICENCE_OBJECT:
        raise ConfigError(where, f"{entity} has no '{LICENCES_FIELD}' list of {LICENCE_OBJECT} to match against")


# -- matching ----------------------------------------------------------------------------------------------------


async def find_materials(
    item: ItemMaterials,
    entity: str,
    key: str,
    access: Access,
    *,
    purpose: Purpose | None,
    today: dt.date,
    path: Sequence[str | int] = (),
) -> list[MaterialFinding]:
    """What government holds of ``item``'s materials for applicant ``entity`` ``key``, read as ``access`` allows
    under ``purpose``. ``path`` is where the list goes in the response (each value read is a disclosure there)."""
    return list(
        await asyncio.gather(
            *(
                _find(material, entity, key, access, purpose, today, (*path, index))
                for index, material in enumerate(item.materials)
            )
        )
    )


async def _find(
    material: Material,
    entity: str,
    key: str,
    access: Access,
    purpose: Purpose | None,
    today: dt.date,
    path: tuple[str | int, ...],
) -> MaterialFinding:
    if not material.connected:
        return MaterialFinding(material, MaterialStatus.NOT_CONNECTED, "no department system holds it: to submit")
    try:
        if material.field is not None:
            return await _field(material, entity, key, access, purpose, path)
        return await _licence(material, entity, key, access, purpose, today, path)
    except Forbidden as exc:
        return MaterialFinding(material, MaterialStatus.REFUSED, f"{exc.reason}: {exc}")
    except SourceError as exc:
        return MaterialFinding(material, MaterialStatus.UNAVAILABLE, f"{exc.code} from {exc.source}: ask again")
    except AuditUnavailable as exc:
        return MaterialFinding(material, MaterialStatus.UNAVAILABLE, str(exc))


async def _field(
    material: Material, entity: str, key: str, access: Access, purpose: Purpose | None, path: tuple[str | int, ...]
) -> MaterialFinding:
    assert material.field is not None
    released = await access.read(entity, key, material.field, purpose=purpose, path=(*path, "summary"))
    where = released.provenance.department if released.provenance is not None else "no department"
    if released.value is None or released.value == []:
        return MaterialFinding(
            material, MaterialStatus.NOT_HELD, f"{where} holds no {material.field} for the applicant: to submit"
        )
    return MaterialFinding(
        material,
        MaterialStatus.HELD,
        f"held by {where}: no need to submit",
        value=released.value,
        provenance=released.provenance,
        masked=released.masked,
    )


async def _licence(
    material: Material,
    entity: str,
    key: str,
    access: Access,
    purpose: Purpose | None,
    today: dt.date,
    path: tuple[str | int, ...],
) -> MaterialFinding:
    from gateway.mapping import EntityKey  # the mapping builds on the configuration, which imports this module

    holder, holder_key, whose = entity, key, ""
    if material.holder is not None:
        ref = (await access.read(entity, key, material.holder, purpose=purpose, path=(*path, "licence"))).value
        if not isinstance(ref, EntityKey):
            return MaterialFinding(material, MaterialStatus.NOT_HELD, f"the applicant has no {material.holder}")
        # The related person is read under the applicant's purpose, as a relation is (schema.types._nested_purpose).
        holder, holder_key, whose = ref.entity, ref.key, f" of the {material.holder}"
    released = await access.read(holder, holder_key, LICENCES_FIELD, purpose=purpose, path=(*path, "licence"))
    wanted = material.licence_type
    found = [lic for lic in released.value or () if isinstance(lic, Mapping) and lic.get("type") == wanted]

    def finding(status: MaterialStatus, reason: str, licence: Mapping[str, Any] | None) -> MaterialFinding:
        return MaterialFinding(
            material, status, reason, licence=licence, provenance=released.provenance, masked=released.masked
        )

    if not found:
        return finding(MaterialStatus.NOT_HELD, f"no {wanted}{whose} in the licence library: to submit", None)
    found.sort(key=lambda lic: _valid_until(lic) or dt.date.max, reverse=True)
    in_force = [lic for lic in found if _state(lic) == "VALID" and not _lapsed(lic, today)]
    if in_force:
        return finding(MaterialStatus.HELD, f"{wanted}{whose} held, in force: no need to submit", in_force[0])
    expired = [lic for lic in found if _state(lic) == "EXPIRED" or _lapsed(lic, today)]
    if expired:
        until = _valid_until(expired[0])
        on = f" on {until.isoformat()}" if until is not None else ""
        return finding(MaterialStatus.EXPIRED, f"held but expired{on}: submit a current one", expired[0])
    state = (_state(found[0]) or "not in force").lower()
    return finding(MaterialStatus.NOT_HELD, f"held but {state}: submit a current one", found[0])


def _state(licence: Mapping[str, Any]) -> str | None:
    status = licence.get("status")
    return status.name if isinstance(status, Enum) else None if status is None else str(status)


def _valid_until(licence: Mapping[str, Any]) -> dt.date | None:
    until = licence.get("validUntil")
    return until if isinstance(until, dt.date) else None


def _lapsed(licence: Mapping[str, Any], today: dt.date) -> bool:
    until = _valid_until(licence)
    return until is not None and until < today


def summarize(value: Any) -> str:
    """A field's value in one line for the window: lists by ``;``, objects as ``name: value`` pairs.

    >>> summarize([{"degree": "本科", "school": "北京大学", "graduatedOn": dt.date(2010, 7, 1), "major": None}])
    '本科, 北京大学, 2010-07-01'
    >>> summarize({"insured": True, "contributionMonths": 120})
    'insured: yes, contributionMonths: 120'
    """
    if isinstance(value, list):
        return "; ".join(summarize(v) for v in value)
    if isinstance(value, Mapping):
        present = [(k, v) for k, v in value.items() if v is not None and v != ""]
        if all(isinstance(v, str | dt.date) for _, v in present):  # a record: its values say what they are
            return ", ".join(summarize(v) for _, v in present)
        return ", ".join(f"{k}: {summarize(v)}" for k, v in present)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
