"""Who is asking: one :class:`Principal` per request, whatever proved it (OIDC token, CAS ticket, API key).

Every identity system the gateway trusts ends in the same object, so authorization, masking, rate limits and the
audit see one shape::

    >>> clerk = Principal(subject="zhang.wei", kind=PrincipalKind.CLERK, via="oidc:province",
    ...                   department="民政局", window="A-07", roles=frozenset({"case_handler"}))
    >>> clerk.is_authenticated, clerk.identity
    (True, 'oidc:province:zhang.wei')

A claim set (JWT claims, CAS attributes) becomes a principal through a :class:`ClaimMapping` from configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.authentication import BaseUser

from gateway.durations import Strict
from gateway.errors import InvalidCredentials
from gateway.keys import is_id_number

__all__ = ["ClaimMapping", "Principal", "PrincipalKind", "principal_from_claims"]


class PrincipalKind(StrEnum):
    """What kind of caller: an applicant themself, hall staff, department staff, a partner system, or a service."""

    CITIZEN = "citizen"
    CLERK = "clerk"
    OFFICER = "officer"
    INTEGRATOR = "integrator"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal(BaseUser):
    """An authenticated caller. ``via`` names what proved it (``oidc:<issuer>``, ``cas``, ``api_key``,
    ``session``, ``development``); ``id_number`` is set for a citizen, ``window`` for a clerk at a counter."""

    subject: str
    kind: PrincipalKind
    via: str
    department: str | None = None
    window: str | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    id_number: str | None = None
    name: str | None = None
    expires_at: float | None = field(default=None, compare=False)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.name or self.subject

    @property
    def identity(self) -> str:
        """Unique across identity systems: the same ``sub`` from two issuers is two principals."""
        return f"{self.via}:{self.subject}"

    def has_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


class ClaimMapping(Strict):
    """Which claim (or CAS attribute) holds each part of a principal. Dotted names reach into objects
    (``realm_access.roles``); a claim holding a space-separated string is split for roles and scopes.
    ``kind`` falls back to ``default_kind`` when the claim is absent."""

    subject: str = "sub"
    kind: str | None = "onewindow_kind"
    default_kind: PrincipalKind | None = None
    department: str | None = "department"
    window: str | None = "window"
    roles: str | None = "roles"
    scopes: str | None = "scope"
    id_number: str | None = "id_number"
    name: str | None = "name"


def _claim(claims: Mapping[str, Any], path: str | None) -> Any:
    if path is None:
        return None
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _one(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None or value == "" else str(value)


def _many(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v) for v in value)
    return frozenset({str(value)})


def principal_from_claims(
    claims: Mapping[str, Any], mapping: ClaimMapping, *, via: str, expires_at: float | None = None
) -> Principal:
    """Build a principal from verified claims; refuse a claim set that does not make a coherent one."""
    subject = _one(_claim(claims, mapping.subject))
    if subject is None:
        raise InvalidCredentials(f"no subject in claim {mapping.subject!r}")
    raw_kind = _one(_claim(claims, mapping.kind))
    if raw_kind is None:
        if mapping.default_kind is None:
            raise InvalidCredentials(f"no principal kind in claim {mapping.kind!r} and no default_kind")
        kind = mapping.default_kind
    else:
        try:
            kind = PrincipalKind(raw_kind.lower())
        except ValueError:
            raise InvalidCredentials(f"unknown principal kind {raw_kind!r}") from None
    id_number = _one(_claim(claims, mapping.id_number))
    if id_number is not None:
        id_number = id_number.strip().upper()
    if kind is PrincipalKind.CITIZEN and (id_number is None or not is_id_number(id_number)):
        raise InvalidCredentials("a citizen principal needs a valid ID number claim")
    return Principal(
        subject=subject,
        kind=kind,
        via=via,
        department=_one(_claim(claims, mapping.department)),
        window=_one(_claim(claims, mapping.window)),
        roles=_many(_claim(claims, mapping.roles)),
        scopes=_many(_claim(claims, mapping.scopes)),
        id_number=id_number if kind is PrincipalKind.CITIZEN else None,
        name=_one(_claim(claims, mapping.name)),
        expires_at=expires_at,
    )
