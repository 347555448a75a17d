"""Which principal may receive which field: sharing classes, purpose binding, masking — policies as data.

Every provided field carries its source's **sharing class** (``sources.<name>.provides.<field>.sharing``):

* ``unconditional`` — to any authenticated principal allowed the entity;
* ``conditional`` — only to departments named in the source's ``agreements`` (or its ``owner``), and only with a
  purpose (a case of that applicant, handled by the caller's department);
* ``not_shared`` — only to the source's ``owner`` department.

Citizens read only their own records. Staff of the kinds in ``policy.purpose_required`` read applicants only with
a purpose; what a purpose is and what it releases (intakes, comprehensive windows, need to know, a grace period
after closing, households) is :meth:`Policy.under_purpose`, configured in ``policy.purposes`` (:mod:`auth.purposes`).
Decisions are made before any department is asked, so a refused field costs no call::

    policy = Policy(config)
    verdict = policy.field(principal, "Person", "maritalStatus", own=False)
    verdict.allowed, verdict.reason, verdict.needs_purpose
    print("\\n".join(policy.explain(principal, "Person", "maritalStatus")))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cachetools import LRUCache

from auth.config import Mask, MaskRule, PolicyConfig
from auth.principal import Principal, PrincipalKind
from auth.purposes import Clock, IntakePurposes, ItemNeeds, PurposeFacts, Role, compile_needs, utc_now
from gateway.config import GatewayConfig, SharingClass
from gateway.errors import ConfigError
from gateway.mapping import CHINA_STANDARD_TIME
from gateway.model import FieldSpec
from gateway.raw import raw_field_name

__all__ = ["APPLICANT_ENTITIES", "Policy", "Reason", "Verdict"]

# Entities that are applicants: reading them is what purpose binding is about.
APPLICANT_ENTITIES = frozenset({"Person", "LegalEntity"})
# Who may sit at a comprehensive window.
_WINDOW_KINDS = frozenset({PrincipalKind.CLERK, PrincipalKind.OFFICER})


class Reason(StrEnum):
    """Why a field was refused (``extensions.reason`` of a FORBIDDEN error)."""

    PURPOSE_REQUIRED = "PURPOSE_REQUIRED"
    PURPOSE_INVALID = "PURPOSE_INVALID"
    PURPOSE_EXPIRED = "PURPOSE_EXPIRED"
    NOT_NEEDED = "NOT_NEEDED"
    NO_SHARING_AGREEMENT = "NO_SHARING_AGREEMENT"
    NOT_SHARED = "NOT_SHARED"
    NOT_OWN_DATA = "NOT_OWN_DATA"
    ENTITY_NOT_ALLOWED = "ENTITY_NOT_ALLOWED"
    SCOPE_MISSING = "SCOPE_MISSING"
    ROLE_REQUIRED = "ROLE_REQUIRED"


# Refusals a comprehensive window's clerk may overcome by acting, under a purpose, as the item's department.
_SHARING_REASONS = frozenset({Reason.NO_SHARING_AGREEMENT, Reason.NOT_SHARED})


@dataclass(frozen=True, slots=True)
class _Rule:
    source: str
    sharing: SharingClass
    owner: str | None
    agreements: frozenset[str]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision for one principal and one field: allowed (through which sources, needing a purpose or not, masked
    or not) or refused with a reason and a sentence a person can act on."""

    allowed: bool
    reason: Reason | None = None
    detail: str = ""
    sources: tuple[str, ...] = ()
    needs_purpose: bool = False
    mask: Mask | None = None


class Policy:
    """The gateway's policy, built once from configuration and checked at start-up."""

    def __init__(self, config: GatewayConfig, *, clock: Clock = utc_now) -> None:
        self.config: PolicyConfig = config.auth.policy
        catalog = self._catalog = config.catalog
        self.now = clock
        purposes = self.config.purposes
        self.needs: dict[str, ItemNeeds] = compile_needs(config)
        self.grace = dt.timedelta(seconds=purposes.grace) if purposes.grace is not None else None
        session_secret = config.auth.sessions.secret
        self.intakes = IntakePurposes(
            purposes, session_secret.get_secret_value().encode() if session_secret else None, clock=clock
        )
        # Entities the model declares personal and the policy does not list are read by whoever may read a person.
        self._entities = dict(self.config.entities)
        # Personal entities a configuration adds are purpose-bound like a person (the built-in ones follow
        # purpose_entities), and a citizen reads them only as their own.
        self._personal = catalog.personal
        self._purpose_entities = frozenset(self.config.purpose_entities) | (catalog.personal - APPLICANT_ENTITIES)
        for entity in catalog.personal - set(self._entities):
            self._entities[entity] = list(self._entities.get("Person", []))
        self._rules: dict[tuple[str, str], list[_Rule]] = {}
        self._field_verdicts: LRUCache[tuple[Any, ...], Verdict] = LRUCache(maxsize=8192)
        for name, src in config.sources.items():
            for target, fmap in src.provides.items():
                entity, _, field_name = target.partition(".")
                spec = catalog.field(entity, field_name)
                sharing = fmap.sharing or (spec.sharing if spec is not None else None) or SharingClass.UNCONDITIONAL
                self._add(name, src.owner, src.agreements, entity, field_name, sharing, f"provides.{target}.sharing")
            if src.raw is not None:
                for query in src.raw.queries or list(src.queries):
                    field_name = raw_field_name(name, query)
                    self._add(
                        name, src.owner, src.agreements, src.raw.entity, field_name, src.raw.sharing, "raw.sharing"
                    )
        # What can be masked: the catalog's fields and their sub-fields, each entity's key, and raw records' fields.
        maskable = {f"{e}.{path}" for e, spec in catalog.items() for path in _field_paths(spec.fields)}
        maskable |= {f"{e}.{spec.key}" for e, spec in catalog.items()}
        raw_prefixes = tuple(f"{entity}.{name}." for entity, name in self._rules if name.startswith("raw."))
        self._parts: dict[tuple[str, str], dict[str, MaskRule]] = {}
        for target, mask_rule in self.config.masking.items():
            if target not in maskable and not target.startswith(raw_prefixes):
                raise ConfigError(f"auth.policy.masking.{target}", "no such field in the catalog")
            entity, _, path = target.partition(".")
            owner = next((f for f in self._fields_of(entity) if path.startswith(f"{f}.")), None)
            if owner is not None:
                self._parts.setdefault((entity, owner), {})[path[len(owner) + 1 :]] = mask_rule
        for entity in self.config.entities:
            if entity not in catalog:
                raise ConfigError(f"auth.policy.entities.{entity}", "no such entity in the catalog")
        for i, entity in enumerate(self.config.purpose_entities):
            if entity not in APPLICANT_ENTITIES:
                raise ConfigError(f"auth.policy.purpose_entities[{i}]", f"{entity!r} is not an applicant entity")

    def _add(
        self,
        source: str,
        owner: str | None,
        agreements: list[str],
        entity: str,
        field_name: str,
        sharing: SharingClass,
        key: str,
    ) -> None:
        if sharing is SharingClass.NOT_SHARED and owner is None:
            raise ConfigError(
                f"sources.{source}.{key}", "not_shared needs the source's owner department (sources.<name>.owner)"
            )
        rule = _Rule(source, sharing, owner, frozenset(agreements))
        self._rules.setdefault((entity, field_name), []).append(rule)

    def _fields_of(self, entity: str) -> list[str]:
        """The entity's fields that may hold sub-fields, longest name first (raw fields contain dots)."""
        names = {name for e, name in self._rules if e == entity}
        spec = self._catalog.get(entity)
        if spec is not None:
            names |= {name for name, f in spec.fields.items() if f.fields is not None}
        return sorted(names, key=len, reverse=True)

    @property
    def personal(self) -> frozenset[str]:
        """Entities whose disclosure is personal data and is audited."""
        return self._personal

    # -- entity level ---------------------------------------------------------------------------------------------

    def entity(self, principal: Principal, entity: str) -> Verdict:
        """May this principal ask for ``entity`` at all (kind, and an API key's scopes)?"""
        kinds = self._entities.get(entity, [])
        if principal.kind not in kinds:
            return Verdict(False, Reason.ENTITY_NOT_ALLOWED, f"a {principal.kind} may not read {entity}")
        if principal.via == "api_key" and not {f"read:{entity}", "read:*"} & principal.scopes:
            return Verdict(False, Reason.SCOPE_MISSING, f"this API key lacks the scope read:{entity}")
        return Verdict(True)

    # -- field level ----------------------------------------------------------------------------------------------

    def field(
        self, principal: Principal, entity: str, field_name: str, *, own: bool, department: str | None = None
    ) -> Verdict:
        """The verdict for one field. ``own``: a citizen reading their own record (or their own case).
        ``department``: the department the principal acts as (a comprehensive window, for an item's department).

        A verdict depends on what kind of caller asks, through what, for which department, with which roles and
        scopes -- never on who they are -- and on the policy, which does not change once built: it is worked out
        once for each such caller and field (the cache holds no subject, ID number or name)."""
        key = (
            principal.kind,
            principal.via,
            principal.department,
            principal.roles,
            principal.scopes,
            entity,
            field_name,
            own,
            department,
        )
        verdict = self._field_verdicts.get(key)
        if verdict is None:
            verdict = self._field_verdicts[key] = self._field(principal, entity, field_name, own, department)
        return verdict

    def _field(self, principal: Principal, entity: str, field_name: str, own: bool, department: str | None) -> Verdict:
        verdict = self.entity(principal, entity)
        if not verdict.allowed:
            return verdict
        mask = self.mask(principal, entity, field_name, own=own)
        rules = self._rules.get((entity, field_name), [])
        if principal.kind is PrincipalKind.CITIZEN:
            if own:
                return Verdict(True, sources=tuple(r.source for r in rules), mask=mask, detail="the caller's own data")
            if entity == "Case" or entity in self._personal:
                return Verdict(False, Reason.NOT_OWN_DATA, "a citizen may read only their own records")
        allowed: list[_Rule] = []
        refusal: Verdict | None = None
        for rule in rules:
            why = self._refusal(principal, rule, department)
            if why is None:
                allowed.append(rule)
            elif refusal is None:
                refusal = why
        if rules and not allowed:
            assert refusal is not None
            return refusal
        conditional = any(r.sharing is SharingClass.CONDITIONAL for r in allowed)
        purpose = conditional or (entity in self._purpose_entities and principal.kind in self.config.purpose_required)
        if purpose and principal.kind is PrincipalKind.CITIZEN:
            # A citizen has no case to handle: conditional data of others is not theirs to read.
            return Verdict(False, Reason.NO_SHARING_AGREEMENT, f"{entity}.{field_name} is shared only under agreement")
        sharing = ", ".join(f"{r.source}: {r.sharing}" for r in allowed) or "no source (derived or key field)"
        return Verdict(
            True,
            sources=tuple(r.source for r in allowed),
            needs_purpose=purpose,
            mask=mask,
            detail=f"released through {sharing}" + ("; a purpose is required" if purpose else ""),
        )

    def _refusal(self, principal: Principal, rule: _Rule, department: str | None = None) -> Verdict | None:
        department = department or principal.department
        owner = rule.owner is not None and department == rule.owner
        if rule.sharing is SharingClass.NOT_SHARED and not owner:
            return Verdict(
                False, Reason.NOT_SHARED, f"{rule.source} shares this field with no one but {rule.owner or 'its owner'}"
            )
        if rule.sharing is SharingClass.CONDITIONAL and not owner and department not in rule.agreements:
            return Verdict(
                False,
                Reason.NO_SHARING_AGREEMENT,
                f"{department or 'the caller'} holds no sharing agreement with {rule.source}",
            )
        return None

    # -- purposes -------------------------------------------------------------------------------------------------

    def window_items(self, principal: Principal) -> frozenset[str]:
        """The service items a comprehensive window takes in for other departments, for a clerk of that window
        (one of its ``roles``, or sitting at one of its ``windows``); empty for everyone else."""
        if principal.kind not in _WINDOW_KINDS:
            return frozenset()
        items: set[str] = set()
        for window in self.config.purposes.windows.values():
            if principal.has_role(*window.roles) or principal.window in window.windows:
                items.update(window.items)
        return frozenset(items)

    def wants_purpose(self, principal: Principal, verdict: Verdict) -> bool:
        """Whether a purpose decides this field: it is released only with one, or it is refused for lack of a
        sharing agreement to a comprehensive-window clerk, who may read it as a purpose's item department."""
        if verdict.allowed:
            return verdict.needs_purpose
        return verdict.reason in _SHARING_REASONS and bool(self.window_items(principal))

    def under_purpose(
        self,
        principal: Principal,
        entity: str,
        field_name: str,
        facts: PurposeFacts,
        role: Role,
        *,
        now: dt.datetime,
        case_itself: bool = False,
    ) -> Verdict:
        """The verdict for a field read under a purpose found to be ``facts``, of a person in ``role``.

        The caller must handle the purpose's service item (their department's, or one their window takes in);
        the purpose must still serve (an intake within its lifetime, a case open or closed less than ``grace``
        ago); the field is read as the item's department would; and where need to know applies (intakes,
        comprehensive windows, items so configured) only what the item needs of a person in ``role`` is released.
        ``case_itself``: a case read for itself (its own record, not an applicant): only the first rule applies."""
        window = self.handles(principal, facts)
        if window is None:
            detail = f"{facts.what} is not handled by {principal.department or 'the caller'}"
            return Verdict(False, Reason.PURPOSE_INVALID, detail)
        if case_itself:
            return self.field(principal, entity, field_name, own=False, department=facts.department if window else None)
        expired = self._expired(facts, now)
        if expired is not None:
            return expired
        verdict = self.field(principal, entity, field_name, own=False, department=facts.department if window else None)
        if not verdict.allowed or entity == "Case":
            return verdict
        under = facts.what + (f", service item {facts.item} taken in for {facts.department}" if window else "")
        if self._need_to_know(facts, window):
            needs = self.needs.get(facts.item or "")
            spec = self._catalog.get(entity)
            if (spec is None or field_name != spec.key) and not (needs and needs.allows(role, entity, field_name)):
                listed = ", ".join(needs.fields(role)) if needs else ""
                return Verdict(
                    False,
                    Reason.NOT_NEEDED,
                    f"service item {facts.item} needs no {entity}.{field_name} of the {role.noun} "
                    f"(need to know: it needs {listed or 'nothing'})",
                )
            under += ", needed by its service item"
        return replace(verdict, detail=f"{verdict.detail} ({under})")

    def handles(self, principal: Principal, facts: PurposeFacts) -> bool | None:
        """Who handles the purpose's service item: ``False``, the caller's own department; ``True``, their
        comprehensive window takes it in; ``None``, neither (the purpose is not theirs)."""
        return self.handles_item(principal, facts.item, facts.department)

    def handles_item(self, principal: Principal, item: str | None, department: str | None) -> bool | None:
        """Who handles the service ``item`` of ``department`` (the comprehensive-window rule, for reads under a
        purpose and for the case workflow alike): ``False``, the caller's own department; ``True``, their
        comprehensive window takes it in; ``None``, neither."""
        if department is not None and department == principal.department:
            return False
        if item is not None and item in self.window_items(principal):
            return True
        return None

    def _need_to_know(self, facts: PurposeFacts, window: bool) -> bool:
        if facts.intake or window or facts.member:
            return True
        needs = self.needs.get(facts.item or "")
        return needs.need_to_know if needs is not None else self.config.purposes.need_to_know

    def _expired(self, facts: PurposeFacts, now: dt.datetime) -> Verdict | None:
        if facts.expires_at is not None and now >= facts.expires_at:
            return Verdict(False, Reason.PURPOSE_EXPIRED, f"{facts.what} expired at {facts.expires_at.isoformat()}")
        if facts.closed_at is not None and self.grace is not None:
            closed = facts.closed_at
            if closed.tzinfo is None:  # the approval platform's local time
                closed = closed.replace(tzinfo=CHINA_STANDARD_TIME)
            if now > closed + self.grace:
                return Verdict(
                    False,
                    Reason.PURPOSE_EXPIRED,
                    f"{facts.what} closed on {closed:%Y-%m-%d}, longer ago than the grace period of "
                    f"{_days(self.grace)}: a closed case is no longer a purpose",
                )
        return None

    def part_masks(self, principal: Principal, entity: str, field_name: str, *, own: bool) -> dict[str, Mask]:
        """Masks of sub-fields of ``field_name`` (``Person.socialInsurance.city``, a raw record's ``XM``) that apply
        to this principal, by dotted path under the field."""
        rules = self._parts.get((entity, field_name))
        if not rules or own:
            return {}
        return {path: rule.mask for path, rule in rules.items() if not principal.has_role(*rule.reveal_to)}

    def mask(self, principal: Principal, entity: str, field_name: str, *, own: bool) -> Mask | None:
        rule = self.config.masking.get(f"{entity}.{field_name}")
        if rule is None or own or principal.has_role(*rule.reveal_to):
            return None
        return rule.mask

    # -- explanation ----------------------------------------------------------------------------------------------

    def explain(
        self,
        principal: Principal,
        entity: str,
        field_name: str,
        *,
        own: bool = False,
        purpose: PurposeFacts | None = None,
        role: Role = Role.APPLICANT,
    ) -> list[str]:
        """Why ``field_name`` would be released to ``principal`` or refused, one line per rule considered;
        ``purpose``: what the caller's purpose was found to be, read of a person in ``role``."""
        lines = [
            f"principal: {principal.subject} ({principal.kind}, department {principal.department or '-'}, "
            f"roles {', '.join(sorted(principal.roles)) or '-'})",
        ]
        windows = self.window_items(principal)
        if windows:
            lines.append(f"comprehensive window: takes in service items {', '.join(sorted(windows))}")
        entity_verdict = self.entity(principal, entity)
        kinds = ", ".join(self._entities.get(entity, []))
        lines.append(f"entity {entity}: allowed to {kinds or 'no one'} -> {'yes' if entity_verdict.allowed else 'no'}")
        acting = None
        if purpose is not None:
            lines += self._explain_purpose(principal, purpose, role)
            if self.handles(principal, purpose):
                acting = purpose.department
        for rule in self._rules.get((entity, field_name), []):
            why = self._refusal(principal, rule, acting)
            agreements = ", ".join(sorted(rule.agreements)) or "none"
            lines.append(
                f"source {rule.source}: sharing {rule.sharing}, owner {rule.owner or '-'}, agreements [{agreements}]"
                f" -> {'usable' if why is None else why.reason}" + (f" (read as {acting})" if acting else "")
            )
        verdict = self.field(principal, entity, field_name, own=own)
        if not own and purpose is not None and self.wants_purpose(principal, verdict):
            verdict = self.under_purpose(principal, entity, field_name, purpose, role, now=self.now())
        if verdict.allowed:
            lines.append(f"RELEASED: {verdict.detail}" + (f"; masked as {verdict.mask}" if verdict.mask else ""))
        else:
            lines.append(f"REFUSED {verdict.reason}: {verdict.detail}")
        return lines

    def _explain_purpose(self, principal: Principal, facts: PurposeFacts, role: Role) -> list[str]:
        item = facts.item or "-"
        lines = [f"purpose: {facts.what}, service item {item} of {facts.department or '-'}, read of the {role.noun}"]
        window = self.handles(principal, facts)
        if window is None:
            lines.append(
                f"handled by: not {principal.department or 'the caller'}, and no window of the caller takes in "
                f"item {item} -> {Reason.PURPOSE_INVALID}"
            )
        elif window:
            lines.append(f"handled by: the caller's window takes in item {item} -> read as {facts.department}")
        else:
            lines.append(f"handled by: the caller's own department, {principal.department}")
        expired = self._expired(facts, self.now())
        if facts.expires_at is not None:
            lasts = f"intake valid until {facts.expires_at.isoformat()}"
        elif facts.closed_at is not None:
            grace = _days(self.grace) if self.grace is not None else "unlimited"
            lasts = f"case closed on {facts.closed_at:%Y-%m-%d}, grace period {grace}"
        else:
            lasts = "case open"
        lines.append(f"expiry: {lasts} -> {'still a purpose' if expired is None else expired.reason}")
        if self._need_to_know(facts, bool(window)):
            why = (
                "an intake"
                if facts.intake
                else "a comprehensive window"
                if window
                else "a household member's purpose"
                if facts.member
                else "configured for the item"
            )
            needs = self.needs.get(item)
            listed = ", ".join(needs.fields(role)) if needs is not None else ""
            lines.append(f"need to know ({why}): item {item} needs of the {role.noun}: {listed or 'nothing'}")
        else:
            lines.append("need to know: off for this item read by its own department (purposes.need_to_know)")
        return lines


def _days(span: dt.timedelta) -> str:
    return f"{span.days}d" if span.days and not span.seconds else str(span)


def _field_paths(fields: Mapping[str, FieldSpec], prefix: str = "") -> list[str]:
    """Every field and sub-field, as dotted paths."""
    paths = []
    for name, spec in fields.items():
        paths.append(prefix + name)
        if spec.fields is not None:
            paths += _field_paths(spec.fields, f"{prefix}{name}.")
    return paths
