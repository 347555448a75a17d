"""Prefill a form (:mod:`gateway.forms`) for one applicant: each field's value, status and provenance.

Every value is read through the request's :class:`~auth.access.Access`, exactly as a GraphQL field is: the policy
decides it (sharing class, purpose), masks it, and the disclosure (or refusal) is recorded for the audit. A field
answers with one :class:`FieldStatus`:

* ``PREFILLED`` -- a department holds it (``provenance`` says which);
* ``REFUSED`` -- the policy refused it (``reason``: ``PURPOSE_REQUIRED``, ``NO_SHARING_AGREEMENT``, ...);
* ``NO_RECORD`` -- the departments asked (``sources``) hold no value for this applicant;
* ``NOT_CONNECTED`` -- no configured source provides the field;
* ``CONFLICT`` -- in conflict mode, departments providing it disagree (``values``: each one's answer);
* ``UNAVAILABLE`` -- a department failed (``reason``: its error code, ``sources``: which).

    result = await prefill(access, config.compiled_forms["teacher_qualification"], "11010519491231002X",
                           purpose=Purpose("BJ...", "11010519491231002X"))
    [(f.label, f.status) for f in result.fields]       # [('姓名', 'PREFILLED'), ...]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from auth.access import Access, Purpose
from gateway.errors import Forbidden, SourceError
from gateway.forms import CompiledField, CompiledForm, FieldHop
from gateway.mapping import EntityKey
from gateway.sources import Provenance, Provider

__all__ = ["FieldStatus", "FormPrefill", "PrefilledField", "SourceValue", "json_value", "normalised", "prefill"]


class FieldStatus(StrEnum):
    """What the gateway could do for one field of a form."""

    PREFILLED = "PREFILLED"
    REFUSED = "REFUSED"
    NO_RECORD = "NO_RECORD"
    NOT_CONNECTED = "NOT_CONNECTED"
    CONFLICT = "CONFLICT"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class SourceValue:
    """One department's answer for a field (conflict mode)."""

    source: str
    department: str
    value: Any


@dataclass(frozen=True)
class PrefilledField:
    label: str
    path: str
    required: bool
    status: FieldStatus
    value: Any = None
    reason: str | None = None
    detail: str = ""
    sources: tuple[str, ...] = ()
    provenance: tuple[Provenance, ...] = ()
    masked: bool = False
    values: tuple[SourceValue, ...] = ()


@dataclass(frozen=True)
class FormPrefill:
    form: str
    title: str
    service_item: str
    applicant: str
    fields: list[PrefilledField] = field(default_factory=list)


async def prefill(
    access: Access,
    form: CompiledForm,
    applicant: str,
    *,
    purpose: Purpose | None,
    conflicts: bool | None = None,
    path: Sequence[str | int] | None = None,
) -> FormPrefill:
    """``form`` filled for ``applicant`` (its key, already checked) under ``purpose``. ``conflicts`` overrides the
    form's own setting. ``path``: where the result goes in a GraphQL response (each value's disclosure is recorded
    at ``path + ["fields", i, "value"]``, withheld there if the audit cannot commit)."""
    compare = form.template.conflicts if conflicts is None else conflicts
    base = list(path) if path is not None else ["prefill"]
    answers = await asyncio.gather(
        *(
            _field(access, f, applicant, purpose, compare, [*base, "fields", i, "value"])
            for i, f in enumerate(form.fields)
        )
    )
    return FormPrefill(form.name, form.template.title, form.template.service_item, applicant, list(answers))


async def _field(
    access: Access, f: CompiledField, applicant: str, purpose: Purpose | None, compare: bool, path: list[str | int]
) -> PrefilledField:
    def answer(status: FieldStatus, **more: Any) -> PrefilledField:
        return PrefilledField(f.label, f.path, f.required, status, **more)

    sources = access.sources.sources
    for hop in f.hops:
        if not sources.providers(hop.entity, hop.field):
            return answer(FieldStatus.NOT_CONNECTED, detail=f"no configured source provides {hop.entity}.{hop.field}")
    key = applicant
    trail: list[Provenance] = []
    masked = False
    for index, hop in enumerate(f.hops):
        last = index == len(f.hops) - 1
        try:
            released = await access.read(hop.entity, key, hop.field, purpose=purpose, path=path if last else None)
        except Forbidden as exc:
            return answer(FieldStatus.REFUSED, reason=str(exc.reason), detail=exc.message)
        except SourceError as exc:
            return answer(FieldStatus.UNAVAILABLE, reason=exc.code, detail=str(exc), sources=(exc.source,))
        masked = masked or released.masked
        if released.provenance is not None:
            trail.append(released.provenance)
        value = _within(released.value, hop)
        if value is None or value == []:
            asked = await _asked(access, hop, key, purpose)
            detail = f"{', '.join(asked)} hold no {'.'.join((hop.entity, hop.field, *hop.within))} for this key"
            return answer(FieldStatus.NO_RECORD, sources=asked, detail=detail, provenance=tuple(trail))
        if not last:
            key = value.key if isinstance(value, EntityKey) else str(value)
            continue
        if compare:
            answered = await _each_source(access, hop, key, purpose, path)
            found = [SourceValue(p.source, p.department, json_value(v)) for p, v in answered]
            if len({normalised(v) for _, v in answered}) > 1:
                departments = ", ".join(v.department for v in found)
                return answer(
                    FieldStatus.CONFLICT,
                    value=json_value(value),
                    detail=f"the departments disagree: {departments}",
                    sources=tuple(v.source for v in found),
                    provenance=tuple(trail),
                    masked=masked,
                    values=tuple(found),
                )
        return answer(
            FieldStatus.PREFILLED,
            value=json_value(value),
            sources=tuple(p.source for p in trail[-1:]),
            provenance=tuple(trail),
            masked=masked,
        )
    raise AssertionError("a compiled path has at least one hop")


def _within(value: Any, hop: FieldHop) -> Any:
    for step in hop.within:
        if isinstance(value, list):
            value = [item.get(step) if isinstance(item, dict) else None for item in value]
            value = [item for item in value if item is not None]
        elif isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return value


async def _asked(access: Access, hop: FieldHop, key: str, purpose: Purpose | None) -> tuple[str, ...]:
    verdict = await access.check(hop.entity, key, hop.field, purpose)
    providers = [p.source for p in access.sources.sources.providers(hop.entity, hop.field)]
    return tuple(s for s in providers if s in verdict.sources) or tuple(providers)


async def _each_source(
    access: Access, hop: FieldHop, key: str, purpose: Purpose | None, path: list[str | int]
) -> list[tuple[Provider, Any]]:
    """Every provider the policy releases the field through, asked alone; those holding a value, in order."""
    verdict = await access.check(hop.entity, key, hop.field, purpose)
    providers = [p for p in access.sources.sources.providers(hop.entity, hop.field) if p.source in verdict.sources]

    async def one(source: str) -> Any:
        try:
            released = await access.read(hop.entity, key, hop.field, purpose=purpose, path=path, source=source)
        except SourceError:
            return None  # a department that fails cannot disagree; the first answer stands
        return _within(released.value, hop)

    values = await asyncio.gather(*(one(p.source) for p in providers))
    return [(p, v) for p, v in zip(providers, values, strict=True) if v is not None and v != []]


def normalised(value: Any) -> Any:
    """A value as compared across departments: text stripped, NFKC and case-folded, inner spaces collapsed;
    numbers, dates and the rest exactly.

    >>> normalised(" 北京市朝阳区ＸＸ路１号 ") == normalised("北京市朝阳区XX路1号")
    True
    """
    if isinstance(value, str):
        return " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    if isinstance(value, list):
        return tuple(normalised(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, normalised(v)) for k, v in value.items()))
    return value


def json_value(value: Any) -> Any:
    """A unified value as plain JSON: enums by name, decimals as exact strings, dates in ISO 8601."""
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, EntityKey):
        return value.key
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value
