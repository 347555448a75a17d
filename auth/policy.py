"""Which principal may receive which field: sharing classes, purpose binding, masking — policies as data.

Every provided field carries its source's **sharing class** (``sources.<name>.provides.<field>.sharing``):

* ``unconditional`` — to any authenticated principal allowed the entity;
* ``conditional`` — only to departments named in the source's ``agreements`` (or its ``owner``), and only with a
  purpose (a case of that applicant, handled by the caller's department);
* ``not_shared`` — only to the source's ``owner`` department.

Citizens read only their own records. Staff of the kinds in ``policy.purpose_required`` read applicants only with
a purpose. Decisions are made before any department is asked, so a refused field costs no call::

    policy = Policy(config)
    verdict = policy.field(principal, "Person", "maritalStatus", own=False)
    verdict.allowed, verdict.reason, verdict.needs_purpose
    print("\\n".join(policy.explain(principal, "Person", "maritalStatus")))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from auth.config import Mask, MaskRule, PolicyConfig
from auth.principal import Principal, PrincipalKind
from gateway.config import GatewayConfig, SharingClass
from gateway.errors import ConfigError
from gateway.model import FieldSpec
from gateway.raw import raw_field_name

__all__ = ["APPLICANT_ENTITIES", "Policy", "Reason", "Verdict"]

# Entities that are applicants: reading them is what purpose binding is about.
APPLICANT_ENTITIES = frozenset({"Person", "LegalEntity"})


class Reason(StrEnum):
    """Why a field was refused (``extensions.reason`` of a FORBIDDEN error)."""

    PURPOSE_REQUIRED = "PURPOSE_REQUIRED"
    PURPOSE_INVALID = "PURPOSE_INVALID"
    NO_SHARING_AGREEMENT = "NO_SHARING_AGREEMENT"
    NOT_SHARED = "NOT_SHARED"
    NOT_OWN_DATA = "NOT_OWN_DATA"
    ENTITY_NOT_ALLOWED = "ENTITY_NOT_ALLOWED"
    SCOPE_MISSING = "SCOPE_MISSING"
    ROLE_REQUIRED = "ROLE_REQUIRED"


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

    def __init__(self, config: GatewayConfig) -> None:
        self.config: PolicyConfig = config.auth.policy
        catalog = self._catalog = config.catalog
        # Entities the model declares personal and the policy does not list are read by whoever may read a person.
        self._entities = dict(self.config.entities)
        # Personal entities a configuration adds are purpose-bound like a person (the built-in ones follow
        # purpose_entities), and a citizen reads them only as their own.
        self._personal = catalog.personal
        self._purpose_entities = frozenset(self.config.purpose_entities) | (catalog.personal - APPLICANT_ENTITIES)
        for entity in catalog.personal - set(self._entities):
            self._entities[entity] = list(self._entities.get("Person", []))
        self._rules: dict[tuple[str, str], list[_Rule]] = {}
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

    def field(self, principal: Principal, entity: str, field_name: str, *, own: bool) -> Verdict:
        """The verdict for one field. ``own``: a citizen reading their own record (or their own case)."""
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
            why = self._refusal(principal, rule)
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

    def _refusal(self, principal: Principal, rule: _Rule) -> Verdict | None:
        department = principal.department
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

    def explain(self, principal: Principal, entity: str, field_name: str, *, own: bool = False) -> list[str]:
        """Why ``field_name`` would be released to ``principal`` or refused, one line per rule considered."""
        lines = [
            f"principal: {principal.subject} ({principal.kind}, department {principal.department or '-'}, "
            f"roles {', '.join(sorted(principal.roles)) or '-'})",
        ]
        entity_verdict = self.entity(principal, entity)
        kinds = ", ".join(self._entities.get(entity, []))
        lines.append(f"entity {entity}: allowed to {kinds or 'no one'} -> {'yes' if entity_verdict.allowed else 'no'}")
        for rule in self._rules.get((entity, field_name), []):
            why = self._refusal(principal, rule)
            agreements = ", ".join(sorted(rule.agreements)) or "none"
            lines.append(
                f"source {rule.source}: sharing {rule.sharing}, owner {rule.owner or '-'}, agreements [{agreements}]"
                f" -> {'usable' if why is None else why.reason}"
            )
        verdict = self.field(principal, entity, field_name, own=own)
        if verdict.allowed:
            lines.append(f"RELEASED: {verdict.detail}" + (f"; masked as {verdict.mask}" if verdict.mask else ""))
        else:
            lines.append(f"REFUSED {verdict.reason}: {verdict.detail}")
        return lines


def _field_paths(fields: Mapping[str, FieldSpec], prefix: str = "") -> list[str]:
    """Every field and sub-field, as dotted paths."""
    paths = []
    for name, spec in fields.items():
        paths.append(prefix + name)
        if spec.fields is not None:
            paths += _field_paths(spec.fields, f"{prefix}{name}.")
    return paths
