"""One request's access to personal data: decide each field, mask it, and remember every disclosure for the audit.

Resolvers never read a provided field from the sources directly; they ask the request's :class:`Access`, which

1. decides the field for the principal (:class:`~auth.policy.Policy`: sharing class, own data, purpose),
2. reads it only through the sources the policy allows (after the cache, so one principal's permissions never
   shape what another receives),
3. masks it by role, and
4. records what left (released, masked, refused, from which sources, for which purpose) so the audit extension can
   commit one :class:`~auth.audit.AuditEntry` per applicant before the response is sent.

    access = Access(principal, policy, sources, request_id="r-1", client="10.0.0.7")
    released = await access.read("Person", "11010519491231002X", "phone", purpose=Purpose("BJ...", "1101..."))
    released.value, released.masked        # ('138****1234', True)
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from graphql.pyutils import Path

from auth.audit import AuditEntry, Outcome
from auth.config import Mask
from auth.masking import mask_parts, mask_value
from auth.policy import Policy, Reason, Verdict
from auth.principal import Principal, PrincipalKind
from auth.purposes import Intake, IntakeProblem, PurposeFacts, Role
from gateway.errors import AuditUnavailable, BadUserInput, Forbidden, SourceError
from gateway.mapping import EntityKey
from gateway.sources import Provenance, RequestSources, Resolved, once

__all__ = ["Access", "Purpose", "Released", "ResponsePath"]

ResponsePath = Sequence[str | int] | Path
"""Where a value goes in the response: its steps, or graphql-core's path of the field (read only when needed)."""


class Purpose(NamedTuple):
    """Why the caller reads an applicant: a case number, and the applicant that case must belong to (``None`` when
    the case itself is what is being read). An intake purpose (registered before the case exists) carries its
    token in ``intake`` and its number in ``case_number`` (what the audit records)."""

    case_number: str
    applicant: str | None
    intake: str | None = None


class Released(NamedTuple):
    value: Any
    provenance: Provenance | None
    masked: bool


@dataclass
class _Disclosure:
    purpose: str | None = None
    released: set[str] = field(default_factory=set)
    masked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)


class Access:
    """The policy as one request applies it; also the record of what this request disclosed."""

    def __init__(
        self,
        principal: Principal,
        policy: Policy,
        sources: RequestSources,
        *,
        request_id: str,
        client_request_id: str | None = None,
        client: str | None = None,
        audit_ready: Callable[[], bool] | None = None,
    ) -> None:
        self.principal = principal
        # Only a citizen with an ID number reads anything as their own.
        self._may_own = principal.kind is PrincipalKind.CITIZEN and principal.id_number is not None
        self.policy = policy
        self.sources = sources
        self.request_id = request_id
        self.client_request_id = client_request_id  # the client's X-Request-Id, kept apart from the gateway's id
        self.client = client
        # Whether the audit store can record a disclosure now: if not, no department is asked for personal data.
        self.audit_ready = audit_ready
        # Entities whose disclosure is personal data and is audited (the model's personal entities).
        self.audited = policy.personal
        self.at = policy.now()
        # Paths of personal values in the response, withheld if the audit cannot commit.
        self.personal_paths: list[ResponsePath] = []
        self._verdicts: dict[tuple[str, str, bool], Verdict] = {}
        # Each field's verdict once decided, by (entity, key, field, purpose): the owner, the purpose and the
        # reader's role are fixed for the request once known, so a field decided ahead (:meth:`prepare`) is not
        # decided again by its resolver.
        self._decided: dict[tuple[str, str, str, Purpose | None], Verdict] = {}
        self._purposes: dict[Purpose, asyncio.Future[PurposeFacts | Verdict]] = {}
        self._under: dict[tuple[str, str, PurposeFacts, Role, bool], Verdict] = {}
        self._case_owner: dict[str, asyncio.Future[str | None]] = {}
        self._households: dict[str, asyncio.Future[frozenset[str]]] = {}
        # Whether a decision depended on the clock (an intake's lifetime, a closed case's grace period): such an
        # answer is not kept whole (cache.responses), since the same request may be refused a minute later.
        self.timed = False
        self._disclosures: dict[tuple[str, str], _Disclosure] = {}

    # -- decisions ------------------------------------------------------------------------------------------------

    def _verdict(self, entity: str, field_name: str, own: bool) -> Verdict:
        slot = (entity, field_name, own)
        verdict = self._verdicts.get(slot)
        if verdict is None:
            verdict = self._verdicts[slot] = self.policy.field(self.principal, entity, field_name, own=own)
        return verdict

    async def own(self, entity: str, key: str) -> bool:
        """Whether a citizen is reading their own record (a case counts as theirs when they applied for it)."""
        own = self._own_now(entity, key)
        if own is not None:
            return own
        applicant = await once(self._case_owner, key, lambda: self._applicant_of(key))
        return applicant == self.principal.id_number

    def _own_now(self, entity: str, key: str) -> bool | None:
        """:meth:`own` if known without waiting, else ``None`` (a case whose applicant is still to be read)."""
        if not self._may_own:
            return False
        if entity == "Person":
            return key == self.principal.id_number
        if entity == "Case":
            owner = self._case_owner.get(key)
            if owner is None or not owner.done():
                return None
            return owner.result() == self.principal.id_number
        return False

    async def _applicant_of(self, case_number: str) -> str | None:
        try:
            applicant = await self.sources.value("Case", case_number, "applicant")
        except SourceError:
            return None
        return applicant.key if isinstance(applicant, EntityKey) else None

    async def _purpose(self, entity: str, key: str, purpose: Purpose | None) -> PurposeFacts | Verdict:
        """What the purpose is (checked once per request), or the refusal it earns."""
        if purpose is None:
            if entity != "Case":
                return Verdict(False, Reason.PURPOSE_REQUIRED, _purpose_required(entity))
            purpose = Purpose(key, None)
        return await once(self._purposes, purpose, lambda: self._check(purpose))

    async def _check(self, purpose: Purpose) -> PurposeFacts | Verdict:
        if purpose.intake is not None:
            try:
                intake = self.policy.intakes.verify(purpose.intake, self.principal, purpose.applicant or "")
            except IntakeProblem as exc:
                return Verdict(False, Reason.PURPOSE_EXPIRED if exc.expired else Reason.PURPOSE_INVALID, exc.detail)
            return intake.facts(purpose.applicant or "")
        case = purpose.case_number
        try:
            if not await self.sources.exists("Case", case, "status"):
                return Verdict(False, Reason.PURPOSE_INVALID, f"case {case} does not exist")
            applicant = await self._applicant_of(case)
            item = await self.sources.value("Case", case, "serviceItem")
            code = item.key if isinstance(item, EntityKey) else None
            department = await self.sources.value("ServiceItem", code, "department") if code is not None else None
            closed_at = await self.sources.value("Case", case, "closedAt")
        except SourceError as exc:
            detail = f"the purpose could not be confirmed: {exc.code} from {exc.source}"
            return Verdict(False, Reason.PURPOSE_INVALID, detail)
        facts = PurposeFacts(
            case,
            code,
            department,
            closed_at=closed_at if isinstance(closed_at, dt.datetime) else None,
            applicant=applicant,
        )
        # Another person than the case's applicant: a member of their household, under an item assessing it.
        stranger = purpose.applicant is not None and applicant != purpose.applicant
        if stranger and (applicant is None or not await self._member(facts, purpose.applicant or "")):
            return Verdict(False, Reason.PURPOSE_INVALID, f"case {case} does not belong to this applicant")
        return replace(facts, member=True) if stranger else facts

    async def _member(self, facts: PurposeFacts, key: str) -> bool:
        """Whether ``key`` lives in the household of the purpose's applicant and its item assesses the household."""
        needs = self.policy.needs.get(facts.item or "")
        if needs is None or not needs.household or facts.applicant is None:
            return False
        applicant = facts.applicant
        return key in await once(self._households, applicant, lambda: self._household_of(applicant))

    async def _household_of(self, applicant: str) -> frozenset[str]:
        relation = self.policy.config.purposes.household_relation
        try:
            members = await self.sources.value("Person", applicant, relation)
        except SourceError:
            return frozenset()
        return frozenset(m.key for m in members or () if isinstance(m, EntityKey))

    async def _role(self, facts: PurposeFacts, entity: str, key: str) -> Role:
        if entity != "Person" or facts.applicant is None or key == facts.applicant:
            return Role.APPLICANT
        return Role.MEMBER if await self._member(facts, key) else Role.RELATED

    def _decide(self, entity: str, key: str, field_name: str, purpose: Purpose | None) -> Verdict | None:
        """:meth:`check` if it needs no waiting (decided before, or the owner, the purpose and the reader's role
        already known), else ``None``. Every path that decides a field comes through here."""
        slot = (entity, key, field_name, purpose)
        verdict = self._decided.get(slot)
        if verdict is None:
            verdict = self._decide_now(entity, key, field_name, purpose)
            if verdict is not None:
                self._decided[slot] = verdict
        return verdict

    def _decide_now(self, entity: str, key: str, field_name: str, purpose: Purpose | None) -> Verdict | None:
        own = self._own_now(entity, key)
        if own is None:
            return None
        verdict = self._verdict(entity, field_name, own)
        if own or not self.policy.wants_purpose(self.principal, verdict):
            return verdict
        if purpose is None:
            if entity != "Case":
                return Verdict(False, Reason.PURPOSE_REQUIRED, _purpose_required(entity))
            purpose = Purpose(key, None)
        checked = self._purposes.get(purpose)
        if checked is None or not checked.done():
            return None
        found = checked.result()
        if isinstance(found, Verdict):
            return found
        role = self._role_now(found, entity, key)
        if role is None:
            return None
        return self._under_purpose(entity, field_name, found, role, purpose)

    def _role_now(self, facts: PurposeFacts, entity: str, key: str) -> Role | None:
        """:meth:`_role` if the household it may need is already read, else ``None``."""
        if entity != "Person" or facts.applicant is None or key == facts.applicant:
            return Role.APPLICANT
        needs = self.policy.needs.get(facts.item or "")
        if needs is None or not needs.household:
            return Role.RELATED
        household = self._households.get(facts.applicant)
        if household is None or not household.done():
            return None
        return Role.MEMBER if key in household.result() else Role.RELATED

    def _under_purpose(
        self, entity: str, field_name: str, found: PurposeFacts, role: Role, purpose: Purpose | None
    ) -> Verdict:
        if found.intake or (found.closed_at is not None and self.policy.grace is not None):
            self.timed = True
        itself = purpose is None or purpose.applicant is None
        slot = (entity, field_name, found, role, itself)
        under = self._under.get(slot)
        if under is None:
            under = self._under[slot] = self.policy.under_purpose(
                self.principal, entity, field_name, found, role, now=self.at, case_itself=itself
            )
        return under

    async def check(self, entity: str, key: str, field_name: str, purpose: Purpose | None) -> Verdict:
        """The verdict for one field of one entity, with the purpose checked; nothing is recorded."""
        verdict = self._decide(entity, key, field_name, purpose)
        if verdict is None:
            verdict = self._decided[(entity, key, field_name, purpose)] = await self._decide_waiting(
                entity, key, field_name, purpose
            )
        return verdict

    async def _decide_waiting(self, entity: str, key: str, field_name: str, purpose: Purpose | None) -> Verdict:
        """:meth:`_decide`, waiting for the owner, the purpose and the reader's role as needed."""
        own = await self.own(entity, key)
        verdict = self._verdict(entity, field_name, own)
        if own or not self.policy.wants_purpose(self.principal, verdict):
            return verdict
        found = await self._purpose(entity, key, purpose)
        if isinstance(found, Verdict):
            return found
        role = await self._role(found, entity, key)
        return self._under_purpose(entity, field_name, found, role, purpose)

    async def register_intake(self, entity: str, applicant: str, item: str) -> Intake:
        """Register an intake purpose: ``applicant`` (an ``entity`` key) is applying for the service ``item`` at
        this caller's window, before any case exists. The caller must handle the item (their department's, or one
        their window takes in); the registration is audited under the applicant, a refusal too."""
        principal = self.principal
        verdict = self.policy.entity(principal, entity)
        if verdict.allowed and principal.kind not in self.policy.config.purpose_required:
            verdict = Verdict(False, Reason.ROLE_REQUIRED, f"a {principal.kind} reads without a purpose: no intake")
        if not verdict.allowed:
            assert verdict.reason is not None
            raise self.refuse(entity, applicant, "intake", None, verdict.reason, verdict.detail)
        department = await self.sources.value("ServiceItem", item, "department")
        if department is None:
            raise BadUserInput(f"no service item {item!r} on the approval platform")
        if item not in self.policy.needs:
            detail = f"service item {item} has no forms, materials or purposes entry: an intake would release nothing"
            raise BadUserInput(detail)
        if self.policy.handles_item(principal, item, department) is None:
            detail = f"service item {item} is {department}'s, and no window of the caller takes it in"
            raise self.refuse(entity, applicant, "intake", None, Reason.PURPOSE_INVALID, detail)
        intake = self.policy.intakes.issue(principal, item, department, entity, applicant)
        self._note(entity, applicant, Purpose(intake.number, applicant, intake.token)).released.add("intake")
        return intake

    async def check_all(
        self, entity: str, field_name: str, reads: Sequence[tuple[str, Purpose | None]]
    ) -> list[Verdict]:
        """:meth:`check` of one field of many entities, ``(key, purpose)``: those already settled at once, no task
        for them; the others together."""
        verdicts = await self._decide_all(entity, [(key, field_name, purpose) for key, purpose in reads])
        return [verdict for verdict in verdicts if verdict is not None]  # all of them: an error was raised

    async def _decide_all(
        self, entity: str, wanted: Sequence[tuple[str, str, Purpose | None]], *, errors: bool = True
    ) -> list[Verdict | None]:
        """:meth:`check` of many ``(key, field, purpose)`` of one entity, in order: the settled ones at once, no
        task for them; the others together. With ``errors=False`` a check that fails is ``None`` instead of
        raising (a read ahead, whose readers meet the error themselves)."""
        verdicts = [self._decide(entity, key, name, purpose) for key, name, purpose in wanted]
        waiting = [i for i, verdict in enumerate(verdicts) if verdict is None]
        if waiting:
            checked = await asyncio.gather(
                *(self.check(entity, *wanted[i]) for i in waiting), return_exceptions=not errors
            )
            for i, verdict in zip(waiting, checked, strict=True):
                verdicts[i] = verdict if isinstance(verdict, Verdict) else None
        return verdicts

    async def decide(self, entity: str, key: str, field_name: str, purpose: Purpose | None) -> Verdict:
        """:meth:`check`, with a refusal recorded (for the audit) and raised."""
        verdict = await self.check(entity, key, field_name, purpose)
        if not verdict.allowed:
            assert verdict.reason is not None
            raise self.refuse(entity, key, field_name, purpose, verdict.reason, verdict.detail)
        return verdict

    def refuse(
        self, entity: str, key: str, field_name: str, purpose: Purpose | None, reason: str, detail: str
    ) -> Forbidden:
        """Record that ``field_name`` of ``entity`` ``key`` was refused (every refusal of personal data is audited,
        on every path) and return the error to raise."""
        self._note(entity, key, purpose).refused.add(field_name)
        return Forbidden(reason, f"{entity}.{field_name} refused: {detail}")

    # -- reading --------------------------------------------------------------------------------------------------

    async def read(
        self,
        entity: str,
        key: str,
        field_name: str,
        *,
        purpose: Purpose | None = None,
        path: ResponsePath | None = None,
        source: str | None = None,
    ) -> Released:
        """One field as this principal may receive it; raises :class:`Forbidden` (recorded) when refused.
        ``path`` is where the value goes in the response; without it the read is not a disclosure (provenance).
        ``source``: that source's answer alone (nothing, if the policy does not release the field through it)."""
        verdict = await self.decide(entity, key, field_name, purpose)
        self.fail_closed(entity)
        resolved = await self.sources.resolve(entity, key, field_name, only=verdict.sources, source=source)
        return self._release(entity, key, field_name, purpose, path, verdict, resolved, await self.own(entity, key))

    def read_now(
        self, entity: str, key: str, field_name: str, *, purpose: Purpose | None, path: ResponsePath
    ) -> Released | None:
        """:meth:`read` (with a ``path``, without ``source``) when nothing it needs is still to come: the decision,
        the purpose and the value settled (by :meth:`prepare`, or an earlier read). Decides, refuses, masks and
        records exactly as :meth:`read`; ``None`` when it would have to wait (then call :meth:`read`)."""
        verdict = self._decide(entity, key, field_name, purpose)
        if verdict is None:
            return None
        if not verdict.allowed:
            assert verdict.reason is not None
            raise self.refuse(entity, key, field_name, purpose, verdict.reason, verdict.detail)
        self.fail_closed(entity)
        resolved = self.sources.resolve_now(entity, key, field_name, only=verdict.sources)
        if resolved is None:
            return None
        own = self._own_now(entity, key)
        assert own is not None  # settled with the verdict
        return self._release(entity, key, field_name, purpose, path, verdict, resolved, own)

    async def prepare(self, entity: str, reads: Sequence[tuple[str, Purpose | None]], fields: Sequence[str]) -> None:
        """Settle, for many entities at once, what :meth:`read` of ``fields`` waits for: owners and purposes, then
        every released field's value, one batch per department query and no task per value, so that
        :meth:`read_now` answers their resolvers. ``reads``: ``(key, purpose)``. Nothing is recorded here (a field
        is decided, refused or disclosed when its resolver reads it) and nothing is asked of a department for a
        field the policy refuses, nor for personal data while the audit cannot record it."""
        wanted = [(key, name, purpose) for key, purpose in reads for name in fields]
        verdicts = await self._decide_all(entity, wanted, errors=False)
        if entity in self.audited and self.audit_ready is not None and not self.audit_ready():
            return
        released = [
            (key, name, verdict.sources)
            for (key, name, _), verdict in zip(wanted, verdicts, strict=True)
            if verdict is not None and verdict.allowed
        ]
        await self.sources.resolve_many(entity, released)

    def settled_value(self, entity: str, key: str, field_name: str, purpose: Purpose | None) -> Any:
        """The value :meth:`read_now` would release as it is, if settled and released unmasked; else ``None``.
        Nothing is recorded or started (for following references ahead of their resolvers)."""
        verdict = self._decide(entity, key, field_name, purpose)
        if verdict is None or not verdict.allowed or verdict.mask is not None:
            return None
        if self.policy.part_masks(self.principal, entity, field_name, own=bool(self._own_now(entity, key))):
            return None
        resolved = self.sources.settled(entity, key, field_name)
        return None if resolved is None else resolved.value

    def fail_closed(self, entity: str) -> None:
        """Raise ``AuditUnavailable`` if ``entity`` is personal and the audit cannot record now: called before any
        department is asked for it."""
        if entity in self.audited and self.audit_ready is not None and not self.audit_ready():
            # Fail closed before any department is asked: nothing personal is fetched that could not be recorded.
            raise AuditUnavailable("personal data withheld: the audit store cannot record disclosures now")

    def _release(
        self,
        entity: str,
        key: str,
        field_name: str,
        purpose: Purpose | None,
        path: ResponsePath | None,
        verdict: Verdict,
        resolved: Resolved,
        own: bool,
    ) -> Released:
        """A resolved value as this principal receives it: masked by role, and recorded if ``path`` is given."""
        value = resolved.value
        masked = False
        if value is not None:
            if verdict.mask is not None:
                value, masked = mask_value(verdict.mask, value), True
            parts = self.policy.part_masks(self.principal, entity, field_name, own=own)
            if parts:
                value, masked = mask_parts(value, parts), True
        if path is not None:
            self._disclosed(entity, key, field_name, purpose, masked, resolved.provenance, path)
        return Released(value, resolved.provenance, masked)

    async def key(
        self,
        entity: str,
        key: str,
        field_name: str,
        *,
        purpose: Purpose | None,
        path: ResponsePath,
        given: bool = False,
    ) -> str:
        """An entity's key as a field (``idNumber``): no source to ask, but decided, masked and audited like any other
        field of the entity, purpose included. A caller refused it sees it fully masked (the refusal is recorded).
        ``given``: the caller typed this key (a root lookup); echoing it back discloses nothing and is not audited."""
        settled = self.key_now(entity, key, field_name, purpose=purpose, path=path, given=given)
        if settled is not None:
            return settled
        if given:
            await self.own(entity, key)
        else:
            await self.check(entity, key, field_name, purpose)  # settles the owner and the purpose
        answer = self.key_now(entity, key, field_name, purpose=purpose, path=path, given=given)
        assert answer is not None
        return answer

    def key_now(
        self,
        entity: str,
        key: str,
        field_name: str,
        *,
        purpose: Purpose | None,
        path: ResponsePath,
        given: bool = False,
    ) -> str | None:
        """:meth:`key` when the owner and the purpose are already known (decided, masked and recorded alike), else
        ``None``."""
        if given:
            own = self._own_now(entity, key)
            if own is None:
                return None
            mask = self.policy.mask(self.principal, entity, field_name, own=own)
            return key if mask is None else str(mask_value(mask, key))
        verdict = self._decide(entity, key, field_name, purpose)
        if verdict is None:
            return None
        if not verdict.allowed:
            assert verdict.reason is not None
            self.refuse(entity, key, field_name, purpose, verdict.reason, verdict.detail)
            return str(mask_value(Mask.ID_NUMBER, key))
        value = key if verdict.mask is None else str(mask_value(verdict.mask, key))
        self._disclosed(entity, key, field_name, purpose, verdict.mask is not None, None, path)
        return value

    def listed(self, entity: str, key: str, purpose: Purpose | None, count: int) -> None:
        """An applicant's cases were listed (``count`` shown): a disclosure of their ``cases``, audited."""
        if count:
            self._note(entity, key, purpose).released.add("cases")

    def released(self, entity: str, key: str, fields: Iterable[str], path: ResponsePath) -> None:
        """``fields`` of ``entity`` ``key`` left in a value a resolver built itself (not read through this object),
        at ``path`` of the response: recorded, and withheld with the rest if the audit cannot commit."""
        if entity not in self.audited:
            return
        self._note(entity, key, None).released.update(fields)
        self._withheld_if_unrecorded(path)

    def _withheld_if_unrecorded(self, path: ResponsePath) -> None:
        """Keep where a personal value goes, to withhold it if the audit cannot commit (graphql-core's path as it
        is: its steps are listed only then)."""
        self.personal_paths.append(path if isinstance(path, Path) else tuple(path))

    def _note(self, entity: str, key: str, purpose: Purpose | None) -> _Disclosure:
        note = self._disclosures.get((entity, key))
        if note is None:
            note = self._disclosures[(entity, key)] = _Disclosure()
        if purpose is not None and note.purpose is None:
            note.purpose = purpose.case_number
        return note

    def _disclosed(
        self,
        entity: str,
        key: str,
        field_name: str,
        purpose: Purpose | None,
        masked: bool,
        provenance: Provenance | None,
        path: ResponsePath,
    ) -> None:
        if entity not in self.audited:
            return
        note = self._note(entity, key, purpose)
        note.released.add(field_name)
        if masked:
            note.masked.add(field_name)
        if provenance is not None:
            note.sources.add(provenance.source)
        self._withheld_if_unrecorded(path)

    # -- the audit ------------------------------------------------------------------------------------------------

    def drain(self) -> tuple[list[AuditEntry], list[ResponsePath]]:
        """The audit entries of what this request disclosed since the last drain (one per applicant), and the
        response paths of the personal values they cover."""
        entries = self.entries()
        paths = self.personal_paths
        self._disclosures = {}
        self.personal_paths = []
        return entries, paths

    def entries(self) -> list[AuditEntry]:
        """One audit entry per applicant this request disclosed (or refused) personal data of."""
        return [
            self.audit_entry(
                entity,
                key,
                released=note.released,
                masked=note.masked,
                refused=note.refused,
                sources=note.sources,
                purpose=note.purpose,
            )
            for (entity, key), note in self._disclosures.items()
            if entity in self.audited or (note.refused and not note.released)
        ]

    def audit_entry(
        self,
        entity: str,
        applicant: str,
        *,
        released: Iterable[str] = (),
        masked: Iterable[str] = (),
        refused: Iterable[str] = (),
        sources: Iterable[str] = (),
        purpose: str | None = None,
        at: dt.datetime | None = None,
    ) -> AuditEntry:
        """The audit entry of this request's principal about ``entity`` ``applicant`` (an ID number or credit
        code): what was ``released`` (of it ``masked``) and ``refused``, the ``sources`` behind it, under
        ``purpose`` (a case or intake number), at ``at`` (the request's time unless given). Its outcome follows:
        ``released`` with nothing refused, ``refused`` with nothing released, else ``partial``. The entries of
        :meth:`entries` are built here, and so are those of writes recorded before they are made (the workflow)."""
        principal = self.principal
        shown, withheld = tuple(sorted(released)), tuple(sorted(refused))
        outcome: Outcome = "released" if not withheld else "partial" if shown else "refused"
        return AuditEntry(
            at=self.at if at is None else at,
            request_id=self.request_id,
            client_request_id=self.client_request_id,
            subject=principal.subject,
            principal_kind=str(principal.kind),
            via=principal.via,
            department=principal.department,
            window=principal.window,
            client=self.client,
            entity=entity,
            applicant=applicant,
            released=shown,
            masked=tuple(sorted(masked)),
            refused=withheld,
            sources=tuple(sorted(sources)),
            purpose=purpose,
            outcome=outcome,
        )


def _purpose_required(entity: str) -> str:
    return f"reading this {entity} needs a purpose: the case number being handled, or an intake"
