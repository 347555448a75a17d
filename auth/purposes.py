"""Purposes that fit a service hall: what a purpose is, what it releases, and for how long.

A clerk reads an applicant for a *purpose*. Besides a case of the applicant handled by the clerk's department
(:class:`~auth.access.Purpose`), the ``auth.policy.purposes`` section adds what a hall needs:

* an **intake purpose**, registered at the window before the case exists (a service item and an applicant): it
  lasts ``intake_ttl`` and releases only what the item needs. :class:`IntakePurposes` issues and checks them as
  signed tokens, so every gateway process sharing the key accepts them; the applicant is bound by a keyed digest,
  never written into the token in clear;
* **comprehensive windows** (综合窗口): clerks holding a window's role are authorised for the items it takes in,
  and read under a purpose for one of them what that item needs, as the item's department would;
* **need to know**: a purpose releases only the fields the item's forms and materials name, and the ``extra``
  ones configured (:func:`compile_needs`); always for intakes and comprehensive windows, for a department's own
  clerks where ``need_to_know`` says so;
* a **grace period**: a case closed longer than ``grace`` ago is no longer a purpose;
* **household purposes**: an item that assesses the household (``household:`` fields) lets its applicant's
  purpose read each member of the applicant's household for those fields.

    needs = compile_needs(config)["11010501300003"]
    needs.allows(Role.MEMBER, "Person", "name")        # True when the item needs members' names
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import jwt

from auth.config import PurposesConfig
from gateway.errors import ConfigError
from gateway.forms import FieldHop, compile_path
from gateway.materials import APPLICANT_ENTITIES, LICENCES_FIELD

if TYPE_CHECKING:
    from auth.principal import Principal
    from gateway.config import GatewayConfig

__all__ = [
    "Clock",
    "Intake",
    "IntakeProblem",
    "IntakePurposes",
    "ItemNeeds",
    "PurposeFacts",
    "Role",
    "compile_needs",
    "utc_now",
]

Clock = Callable[[], dt.datetime]

_ALGORITHM = "HS256"
_ISSUER = "onewindow-intake"
_NUMBER_MAX = 32


def utc_now() -> dt.datetime:
    """The wall clock, in UTC: the default clock of purposes."""
    return dt.datetime.now(dt.UTC)


class Role(StrEnum):
    """Whom a read under a purpose is about, relative to the purpose's applicant."""

    APPLICANT = "applicant"
    RELATED = "related"  # reached from the applicant by a relation (a spouse, a legal representative)
    MEMBER = "member"  # a member of the applicant's household, under an item assessing the household

    @property
    def noun(self) -> str:
        return {"applicant": "applicant", "related": "related person", "member": "household member"}[self.value]


@dataclass(frozen=True)
class ItemNeeds:
    """What one service item needs: fields (``(entity, field)``) of its applicant, of persons related to the
    applicant, and of each member of the applicant's household."""

    item: str
    applicant: frozenset[tuple[str, str]] = frozenset()
    related: frozenset[tuple[str, str]] = frozenset()
    household: frozenset[tuple[str, str]] = frozenset()
    need_to_know: bool = False

    def allows(self, role: Role, entity: str, field_name: str) -> bool:
        """Whether the item needs ``entity.field_name`` of a person in ``role`` (a household member is also a
        related person: what the item needs of a spouse it needs of a spouse living in the household)."""
        wanted = (entity, field_name)
        if role is Role.APPLICANT:
            return wanted in self.applicant
        if role is Role.MEMBER and wanted in self.household:
            return True
        return wanted in self.related

    def fields(self, role: Role) -> list[str]:
        """The fields needed of a person in ``role``, as ``Entity.field``, sorted (for explanations)."""
        chosen = self.applicant if role is Role.APPLICANT else self.related
        if role is Role.MEMBER:
            chosen = chosen | self.household
        return sorted(f"{e}.{f}" for e, f in chosen)


def compile_needs(config: GatewayConfig) -> dict[str, ItemNeeds]:
    """Each service item's needs, from its forms (``forms:``), its materials (``materials:``) and the purposes
    section's ``extra`` and ``household`` paths; a path the model lacks fails naming its key."""
    purposes = config.auth.policy.purposes
    catalog = config.catalog
    applicant: dict[str, set[tuple[str, str]]] = {}
    related: dict[str, set[tuple[str, str]]] = {}
    household: dict[str, set[tuple[str, str]]] = {}

    def add(item: str, hops: tuple[FieldHop, ...], first: dict[str, set[tuple[str, str]]]) -> None:
        for index, hop in enumerate(hops):
            (first if index == 0 else related).setdefault(item, set()).add((hop.entity, hop.field))

    for compiled in config.compiled_forms.values():
        for form_field in compiled.fields:
            add(compiled.template.service_item, form_field.hops, applicant)
    for code, item in config.service_materials.items():
        wanted = applicant.setdefault(code, set())
        for material in item.materials:
            if material.field is not None and material.entity is not None:
                wanted.add((material.entity, material.field))
            elif material.holder is not None and material.entity is not None:
                wanted.add((material.entity, material.holder))
                ref = catalog[material.entity].fields[material.holder].ref
                assert ref is not None  # checked when the materials were compiled
                related.setdefault(code, set()).add((ref, LICENCES_FIELD))
            elif material.licence_type is not None:
                wanted.update((entity, LICENCES_FIELD) for entity in APPLICANT_ENTITIES)
    relation = purposes.household_relation
    for code, declared in purposes.items.items():
        where = f"auth.policy.purposes.items.{code}"
        if not code.strip():
            raise ConfigError(where, "a service item code is a non-empty string")
        for i, path in enumerate(declared.extra):
            add(code, compile_path(f"{where}.extra[{i}]", path, catalog), applicant)
        for i, path in enumerate(declared.household):
            hops = compile_path(f"{where}.household[{i}]", path, catalog)
            if hops[0].entity != "Person":
                raise ConfigError(f"{where}.household[{i}]", f"{path!r}: a household member is a Person")
            add(code, hops, household)
        if declared.household:
            spec = catalog.field("Person", relation)
            if spec is None or spec.ref != "Person" or not spec.many:
                raise ConfigError(
                    "auth.policy.purposes.household_relation",
                    f"Person.{relation} is not a list of persons: name the relation listing a household",
                )
            applicant.setdefault(code, set()).add(("Person", relation))
    for name, window in purposes.windows.items():
        if not window.roles and not window.windows:
            raise ConfigError(f"auth.policy.purposes.windows.{name}", "name the roles or windows of its clerks")
    codes = set(applicant) | set(related) | set(household) | set(purposes.items)
    return {
        code: ItemNeeds(
            code,
            frozenset(applicant.get(code, ())),
            frozenset(related.get(code, ())),
            frozenset(household.get(code, ())),
            _need_to_know(purposes, code),
        )
        for code in codes
    }


def _need_to_know(purposes: PurposesConfig, code: str) -> bool:
    declared = purposes.items.get(code)
    if declared is not None and declared.need_to_know is not None:
        return declared.need_to_know
    return purposes.need_to_know


@dataclass(frozen=True)
class PurposeFacts:
    """What a purpose was found to be: its reference (a case or intake number), its service item, the item's
    department, and when it stops serving (a case's closing time, an intake's expiry)."""

    reference: str
    item: str | None
    department: str | None
    intake: bool = False
    closed_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    applicant: str | None = None  # the purpose's applicant (the case's, the intake's)
    member: bool = False  # stated for a member of the applicant's household, not for the applicant

    @property
    def what(self) -> str:
        return f"intake {self.reference}" if self.intake else f"case {self.reference}"


@dataclass(frozen=True)
class Intake:
    """A registered intake purpose: ``number`` is what the audit records, ``token`` what the caller presents."""

    number: str
    token: str
    item: str
    department: str
    entity: str
    issued_at: dt.datetime
    expires_at: dt.datetime

    def facts(self, applicant: str) -> PurposeFacts:
        return PurposeFacts(
            self.number, self.item, self.department, intake=True, expires_at=self.expires_at, applicant=applicant
        )


class IntakeProblem(Exception):
    """An intake purpose that cannot be used: forged, someone else's, another applicant's, or expired."""

    def __init__(self, detail: str, *, expired: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.expired = expired


class IntakePurposes:
    """Issue and check intake purposes, signed with the purposes' key, timed by ``clock``.

    >>> from auth.principal import Principal, PrincipalKind
    >>> now = [dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)]
    >>> intakes = IntakePurposes(PurposesConfig(intake_ttl="10m"), b"k" * 32, clock=lambda: now[0])
    >>> clerk = Principal("li.na", PrincipalKind.CLERK, "cas", department="政务服务中心")
    >>> intake = intakes.issue(clerk, "11010501300003", "民政局", "Person", "11010519491231002X")
    >>> intakes.verify(intake.token, clerk, "11010519491231002X").item
    '11010501300003'
    >>> now[0] += dt.timedelta(minutes=11)
    >>> intakes.verify(intake.token, clerk, "11010519491231002X")
    Traceback (most recent call last):
    auth.purposes.IntakeProblem: intake ... expired at 2026-03-02T09:10:00+00:00
    """

    def __init__(self, config: PurposesConfig, fallback_key: bytes | None, *, clock: Clock = utc_now) -> None:
        secret = config.intake_secret
        if secret is not None:
            self._key = secret.get_secret_value().encode()
        else:
            self._key = fallback_key if fallback_key is not None else secrets.token_bytes(32)
        self.ttl = dt.timedelta(seconds=config.intake_ttl)
        self._clock = clock

    def digest(self, applicant: str) -> str:
        """The applicant as the token carries it: a keyed digest, so the token reveals no ID number."""
        return hmac.new(self._key, applicant.encode(), hashlib.sha256).hexdigest()

    def issue(self, principal: Principal, item: str, department: str, entity: str, applicant: str) -> Intake:
        """A new intake purpose of ``principal`` for ``applicant`` (``entity`` key) and the service ``item``."""
        issued = self._clock().replace(microsecond=0)
        expires = issued + self.ttl
        number = f"IN{issued:%Y%m%d}{secrets.token_hex(4).upper()}"
        claims: dict[str, Any] = {
            "iss": _ISSUER,
            "jti": number,
            "sub": principal.identity,
            "item": item,
            "department": department,
            "entity": entity,
            "applicant": self.digest(applicant),
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return Intake(number, token, item, department, entity, issued, expires)

    @staticmethod
    def number_of(token: str) -> str:
        """The number an intake token claims (unchecked: :meth:`verify` checks it), for the audit's purpose."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return "intake (malformed)"
        number = claims.get("jti")
        return number if isinstance(number, str) and len(number) <= _NUMBER_MAX else "intake (malformed)"

    def verify(self, token: str, principal: Principal, applicant: str) -> Intake:
        """The intake ``token`` names, if ``principal`` registered it for ``applicant`` and it has not expired;
        :class:`IntakeProblem` saying which check failed otherwise."""
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": ["jti", "sub", "exp", "iat"]},
            )
        except jwt.InvalidTokenError:
            raise IntakeProblem("not an intake purpose this gateway registered") from None
        number = str(claims["jti"])
        if claims["sub"] != principal.identity:
            raise IntakeProblem(f"intake {number} was registered by another clerk")
        if not hmac.compare_digest(str(claims.get("applicant", "")), self.digest(applicant)):
            raise IntakeProblem(f"intake {number} is for another applicant")
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        if self._clock() >= expires:
            raise IntakeProblem(f"intake {number} expired at {expires.isoformat()}", expired=True)
        issued = dt.datetime.fromtimestamp(int(claims["iat"]), dt.UTC)
        return Intake(
            number, token, str(claims["item"]), str(claims["department"]), str(claims["entity"]), issued, expires
        )
