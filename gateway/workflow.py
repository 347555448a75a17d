"""Case workflow at the window: receive an application, request and receive supplementary materials (补正), record
the applicant's rating (好差评), written through to the approval platform; and each case's working-day deadline.

Every action is a mutation with an idempotency key (:mod:`gateway.idempotency`). It is checked in this order, so
that bad input costs no department call and a refused caller learns nothing of the case:

1. the input (an ID number or credit code, a score from 1 to 5, materials named...): ``BAD_USER_INPUT``;
2. the idempotency key: the same key and input answer the first result again, unwritten;
3. the case or item on the approval platform, read fresh: ``NOT_FOUND``;
4. the caller: staff (clerk or officer) of the department handling the item or at a comprehensive window taking
   the item in (the rule reads under a purpose follow), or, for a rating, the applicant themself: ``FORBIDDEN``
   with reason ``NOT_CASE_DEPARTMENT`` (recorded in the audit; nothing is written);
5. the case's status: ``INVALID_CASE_ACTION`` (and a second rating);
6. the audit: the write is recorded before it is made (nothing is written that could not be recorded);
7. the write, through the source's ``commands``, in one transaction; an UPDATE matches the status read in 5, so a
   change by someone else meanwhile writes nothing (``INVALID_CASE_ACTION``);
8. the case's cached reads are dropped (every process, with Redis) and the event is published to subscribers.

The commands a workflow source provides, with the parameters each receives (``docs/workflow.md``):
``open_case`` (caseNumber, serviceItem, applicantKind, applicant, status, submittedAt, deadline),
``add_event`` (caseNumber, event, at, handler, note), ``set_status`` (caseNumber, previousStatus, status,
closedAt) and ``rate_case`` (caseNumber, score, comment, ratedAt, rater).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from adapters.base import Adapter, Write
from auth.access import Access
from auth.audit import AuditLog
from auth.principal import Principal, PrincipalKind
from gateway.calendar import DeadlineStatus, Pause, WorkingCalendar, deadline_status
from gateway.case_events import CaseEventBus, CaseNotice, LocalEventBus, RedisEventBus
from gateway.config import GatewayConfig, WorkflowConfig
from gateway.errors import (
    BadUserInput,
    ConfigError,
    InvalidCaseAction,
    NotFound,
    SourceError,
    WriteConflict,
)
from gateway.idempotency import MAX_KEY_LENGTH, IdempotencyStore, MemoryIdempotency, RedisIdempotency, fingerprint
from gateway.keys import parse_applicant
from gateway.mapping import CHINA_STANDARD_TIME, EntityKey
from gateway.sources import RequestSources, SourceSet

__all__ = ["COMMANDS", "NOT_CASE_DEPARTMENT", "CaseOutcome", "CaseWorkflow"]

COMMANDS = ("open_case", "add_event", "set_status", "rate_case")
# The reason of a refusal to act on a case of another department.
NOT_CASE_DEPARTMENT = "NOT_CASE_DEPARTMENT"
MAX_MATERIALS = 30
MAX_TEXT = 200
MAX_COMMENT = 500
_OPEN = ("RECEIVED", "ACCEPTED", "SUPPLEMENT_REQUESTED", "APPROVED")
_CLOSED = ("REJECTED", "COMPLETED")
_STAFF = (PrincipalKind.CLERK, PrincipalKind.OFFICER)
_NUMBER_ATTEMPTS = 3

Action = Literal["receiveApplication", "requestSupplement", "receiveSupplement", "rateCase"]


@dataclass(frozen=True)
class CaseOutcome:
    """What an action did: the case, its status after it, and the event written (``None`` for a rating)."""

    case_number: str
    status: str
    event: str | None
    at: str
    handler: str | None
    note: str | None
    replayed: bool = False

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "replayed"}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CaseOutcome:
        return cls(**json.loads(text), replayed=True)


@dataclass(frozen=True)
class _Case:
    """A case as the approval platform holds it now."""

    number: str
    status: str
    service_item: str
    department: str
    applicant: str
    applicant_entity: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _local(moment: dt.datetime) -> dt.datetime:
    """A moment as the approval platform records it: China Standard Time, without an offset."""
    return moment.astimezone(CHINA_STANDARD_TIME).replace(tzinfo=None)


def _name(value: Any) -> str | None:
    """A unified enum's value (``CaseStatus.ACCEPTED`` -> ``"ACCEPTED"``), or the string itself."""
    return None if value is None else str(getattr(value, "value", value))


def _text(value: str | None, name: str, limit: int = MAX_TEXT) -> str | None:
    if value is None or not value.strip():
        return None
    text = " ".join(value.split())
    if len(text) > limit:
        raise BadUserInput(f"{name} is at most {limit} characters")
    return text


class CaseWorkflow:
    """The workflow over one source (``workflow.source``) for one gateway process: checked when the app is built,
    opened with the sources. ``clock`` gives the time of actions (tests move it)."""

    def __init__(self, config: GatewayConfig, *, clock: Callable[[], dt.datetime] = _now) -> None:
        assert config.workflow is not None
        self.settings: WorkflowConfig = config.workflow
        self.source = self.settings.source
        source = config.sources.get(self.source)
        if source is None:
            raise ConfigError("workflow.source", f"no source named {self.source!r}")
        missing = [name for name in COMMANDS if name not in source.commands]
        if missing:
            raise ConfigError(f"sources.{self.source}.commands", f"the workflow needs {', '.join(missing)}")
        self.calendar = WorkingCalendar(self.settings.calendar)
        self.clock = clock
        url = config.cache.url
        shared = config.cache.enabled and url.startswith(("redis://", "rediss://"))
        namespace = f"{config.cache.namespace}:workflow"
        ttl = self.settings.idempotency_ttl
        self.idempotency: IdempotencyStore = RedisIdempotency(url, namespace, ttl) if shared else MemoryIdempotency(ttl)
        self.events: CaseEventBus = RedisEventBus(url, namespace) if shared else LocalEventBus()
        self._sources: SourceSet | None = None

    def open(self, sources: SourceSet) -> None:
        self._sources = sources

    async def aclose(self) -> None:
        await self.idempotency.aclose()
        await self.events.aclose()

    @property
    def _adapter(self) -> Adapter:
        assert self._sources is not None, "open() first"
        return self._sources.adapters[self.source]

    # -- the actions -----------------------------------------------------------------------------------------------

    async def receive(
        self, access: Access, audit: AuditLog | None, key: str, service_item: str, applicant: str, note: str | None
    ) -> CaseOutcome:
        """A new case for ``applicant`` (an ID number or credit code) and ``service_item``: RECEIVED."""
        item = service_item.strip()
        if not item:
            raise BadUserInput("serviceItem is required")
        named = parse_applicant(applicant)
        entity, who = named
        remark = _text(note, "note") or "材料已接收"
        given = {"serviceItem": item, "applicant": who, "note": remark}

        async def perform() -> CaseOutcome:
            sources = self._fresh(access.principal)
            if not await sources.exists("ServiceItem", item, "name"):
                raise NotFound(f"no service item {item} on the approval platform")
            department = await sources.value("ServiceItem", item, "department")
            promised = await sources.value("ServiceItem", item, "promisedDays")
            handled_by = None if department is None else str(department)
            self._authorize(access, entity, who, item, handled_by, "receiveApplication")
            now = self.clock()
            local = _local(now)
            deadline = self.calendar.add_working_days(local.date(), int(promised or 0))
            handler = _handler(access.principal)
            for attempt in range(_NUMBER_ATTEMPTS):
                number = f"BJ{local:%Y%m%d}{secrets.randbelow(10**8):08d}"
                case = _Case(number, "RECEIVED", item, str(department), who, entity)
                await self._audit(access, audit, case, "receiveApplication")
                opened = {
                    "caseNumber": number,
                    "serviceItem": item,
                    "applicantKind": named.kind,
                    "applicant": who,
                    "status": "RECEIVED",
                    "submittedAt": local,
                    "deadline": dt.datetime.combine(deadline, dt.time(23, 59, 59)),
                }
                event = self._event(number, "RECEIVED", local, handler, remark)
                try:
                    await self._adapter.write([Write("open_case", opened), event])
                except WriteConflict:
                    if attempt + 1 == _NUMBER_ATTEMPTS:
                        raise
                    continue  # a case number drawn twice: draw again
                await self._sources_set.invalidate(self.source, who)
                return await self._published(case, "RECEIVED", now, handler, remark)
            raise AssertionError("unreachable")

        return await self._once(access, key, "receiveApplication", given, perform)

    async def request_supplement(
        self,
        access: Access,
        audit: AuditLog | None,
        key: str,
        case_number: str,
        missing: Sequence[str],
        note: str | None,
    ) -> CaseOutcome:
        """Ask the applicant for ``missing`` materials: SUPPLEMENT_REQUESTED; the case's clock stops."""
        number = _case_number(case_number)
        materials = [m for m in (_text(m, "missingMaterials") for m in missing) if m]
        if not materials:
            raise BadUserInput("missingMaterials names at least one material")
        if len(materials) > MAX_MATERIALS:
            raise BadUserInput(f"at most {MAX_MATERIALS} missing materials")
        extra = _text(note, "note")
        remark = "材料不全，请补正：" + "、".join(materials) + (f"（{extra}）" if extra else "")
        if len(remark) > MAX_TEXT:
            raise BadUserInput(f"the missing materials and note are at most {MAX_TEXT} characters together")
        given = {"caseNumber": number, "missingMaterials": materials, "note": extra}
        return await self._once(
            access,
            key,
            "requestSupplement",
            given,
            lambda: self._step(access, audit, number, "requestSupplement", ("RECEIVED", "ACCEPTED"), remark),
        )

    async def receive_supplement(
        self, access: Access, audit: AuditLog | None, key: str, case_number: str, note: str | None
    ) -> CaseOutcome:
        """The applicant brought the materials: SUPPLEMENT_RECEIVED, the case ACCEPTED again; the clock runs on."""
        number = _case_number(case_number)
        remark = _text(note, "note") or "补正材料已接收"
        given = {"caseNumber": number, "note": remark}
        return await self._once(
            access,
            key,
            "receiveSupplement",
            given,
            lambda: self._step(access, audit, number, "receiveSupplement", ("SUPPLEMENT_REQUESTED",), remark),
        )

    async def rate(
        self, access: Access, audit: AuditLog | None, key: str, case_number: str, score: int, comment: str | None
    ) -> CaseOutcome:
        """The applicant's rating of a completed case, 1 (very poor) to 5 (very good), once per case."""
        number = _case_number(case_number)
        if not 1 <= score <= 5:
            raise BadUserInput("score is from 1 (very poor) to 5 (very good)")
        remark = _text(comment, "comment", MAX_COMMENT)
        given = {"caseNumber": number, "score": score, "comment": remark}

        async def perform() -> CaseOutcome:
            case = await self._case(access.principal, number)
            self._authorize(
                access, case.applicant_entity, case.applicant, case.service_item, case.department, "rateCase"
            )
            if case.status != "COMPLETED":
                raise InvalidCaseAction(f"case {number} is {case.status}: only a completed case is rated")
            await self._audit(access, audit, case, "rateCase")
            now = self.clock()
            rating = {
                "caseNumber": number,
                "score": score,
                "comment": remark,
                "ratedAt": _local(now),
                "rater": _handler(access.principal),
            }
            try:
                await self._adapter.write([Write("rate_case", rating)])
            except WriteConflict:
                raise InvalidCaseAction(f"case {number} is already rated") from None
            return CaseOutcome(number, case.status, None, now.isoformat(), _handler(access.principal), remark)

        return await self._once(access, key, "rateCase", given, perform)

    # -- deadlines ---------------------------------------------------------------------------------------------

    async def deadline(self, sources: RequestSources, case_number: str, now: dt.datetime) -> DeadlineStatus | None:
        """The case's working days used and left, its clock stopped while it waits for materials; ``None`` for a
        closed case or one whose submission or item's promised days are unknown."""
        status = _name(await sources.value("Case", case_number, "status"))
        if status is None or status in _CLOSED or await sources.value("Case", case_number, "closedAt") is not None:
            return None
        submitted: dt.datetime | None = await sources.value("Case", case_number, "submittedAt")
        item = await sources.value("Case", case_number, "serviceItem")
        promised = await sources.value("ServiceItem", item.key, "promisedDays") if isinstance(item, EntityKey) else None
        if submitted is None or promised is None:
            return None
        events = await sources.value("Case", case_number, "events") or []
        local = now.astimezone(CHINA_STANDARD_TIME)
        return deadline_status(self.calendar, submitted.astimezone(CHINA_STANDARD_TIME), int(promised),
                               _pauses(events), local)  # fmt: skip

    def warning(self, status: DeadlineStatus) -> Literal["ON_TIME", "WARNING", "OVERDUE"]:
        return status.state(self.settings.warning_days)

    # -- the steps shared by the actions -------------------------------------------------------------------------

    @property
    def _sources_set(self) -> SourceSet:
        assert self._sources is not None, "open() first"
        return self._sources

    def _fresh(self, principal: Principal) -> RequestSources:
        return self._sources_set.for_request(principal)

    async def _case(self, principal: Principal, number: str) -> _Case:
        """The case as the platform holds it now: its cached reads are dropped first."""
        await self._sources_set.invalidate(self.source, number)
        sources = self._fresh(principal)
        if not await sources.exists("Case", number, "status"):
            raise NotFound(f"no case {number} on the approval platform")
        status = _name(await sources.value("Case", number, "status"))
        item = await sources.value("Case", number, "serviceItem")
        applicant = await sources.value("Case", number, "applicant")
        if status is None or not isinstance(item, EntityKey) or not isinstance(applicant, EntityKey):
            raise SourceError(self.source, f"case {number} lacks a status, item or applicant")
        department = await sources.value("ServiceItem", item.key, "department")
        return _Case(number, status, item.key, str(department), applicant.key, applicant.entity)

    async def _step(
        self,
        access: Access,
        audit: AuditLog | None,
        number: str,
        action: Action,
        allowed: tuple[str, ...],
        remark: str,
    ) -> CaseOutcome:
        """A step of an open case: from one of ``allowed`` statuses to the next, with its event."""
        event, status = {
            "requestSupplement": ("SUPPLEMENT_REQUESTED", "SUPPLEMENT_REQUESTED"),
            "receiveSupplement": ("SUPPLEMENT_RECEIVED", "ACCEPTED"),
        }[action]
        case = await self._case(access.principal, number)
        self._authorize(access, case.applicant_entity, case.applicant, case.service_item, case.department, action)
        if case.status not in allowed:
            raise InvalidCaseAction(f"case {number} is {case.status}: {action} needs {' or '.join(allowed)}")
        await self._audit(access, audit, case, action)
        now = self.clock()
        local = _local(now)
        handler = _handler(access.principal)
        moved = {"caseNumber": number, "previousStatus": case.status, "status": status, "closedAt": None}
        try:
            await self._adapter.write([Write("set_status", moved), self._event(number, event, local, handler, remark)])
        except WriteConflict:
            raise InvalidCaseAction(f"case {number} changed meanwhile; read it again") from None
        await self._sources_set.invalidate(self.source, number)
        moved_case = _Case(number, status, case.service_item, case.department, case.applicant, case.applicant_entity)
        return await self._published(moved_case, event, now, handler, remark)

    @staticmethod
    def _event(number: str, event: str, local: dt.datetime, handler: str, note: str | None) -> Write:
        return Write("add_event", {"caseNumber": number, "event": event, "at": local, "handler": handler, "note": note})

    async def _published(
        self, case: _Case, event: str, now: dt.datetime, handler: str, note: str | None
    ) -> CaseOutcome:
        at = now.astimezone(CHINA_STANDARD_TIME).replace(microsecond=0).isoformat()
        notice = CaseNotice(
            case.number, event, at, handler, note, case.status, case.service_item, case.department, case.applicant
        )
        await self.events.publish(notice)
        return CaseOutcome(case.number, case.status, event, at, handler, note)

    def _authorize(
        self, access: Access, entity: str, applicant: str, item: str, department: str | None, action: Action
    ) -> None:
        """Staff handling the service ``item`` act -- of its ``department``, or at a comprehensive window taking it
        in (the rule reads under a purpose follow: :meth:`~auth.policy.Policy.handles_item`); the applicant
        themself may also rate their case. A refusal is recorded under the applicant; nothing is written."""
        principal = access.principal
        if principal.kind in _STAFF and access.policy.handles_item(principal, item, department) is not None:
            return
        if action == "rateCase" and principal.kind is PrincipalKind.CITIZEN and principal.id_number == applicant:
            return
        where = department or "the department handling the item"
        detail = f"{action} is for staff of {where} or of a window taking in service item {item}"
        if action == "rateCase":
            detail += ", or the applicant"
        raise access.refuse(entity, applicant, action, None, NOT_CASE_DEPARTMENT, detail)

    async def _audit(self, access: Access, audit: AuditLog | None, case: _Case, action: Action) -> None:
        """The write, recorded under the applicant before it is made; an audit that cannot record stops it."""
        if audit is None:
            return
        entry = access.audit_entry(
            case.applicant_entity,
            case.applicant,
            released=(f"write:{action}",),
            sources=(self.source,),
            purpose=case.number,
            at=self.clock(),
        )
        await audit.write([entry])

    async def _once(
        self, access: Access, key: str, action: Action, given: dict[str, Any], perform: Callable[[], Awaitable[Any]]
    ) -> CaseOutcome:
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise BadUserInput(f"idempotencyKey: 1 to {MAX_KEY_LENGTH} characters")
        scope = access.principal.identity
        digest = fingerprint(action, given)
        first = await self.idempotency.begin(scope, key, digest)
        if first is not None:
            return CaseOutcome.from_json(first)
        try:
            outcome: CaseOutcome = await perform()
        except BaseException:
            await self.idempotency.release(scope, key)
            raise
        await self.idempotency.finish(scope, key, digest, outcome.to_json())
        return outcome


def _case_number(value: str) -> str:
    number = value.strip()
    if not number or len(number) > 40:
        raise BadUserInput("caseNumber is required (at most 40 characters)")
    return number


def _handler(principal: Principal) -> str:
    """Who acted, as the platform's handler column shows it: the window (or department) and the person."""
    where = principal.window or principal.department
    return f"{where} {principal.display_name}" if where else principal.display_name


def _pauses(events: Sequence[Any]) -> list[Pause]:
    """The periods a case waited for materials, from its timeline (in time order)."""
    pauses: list[Pause] = []
    start: dt.datetime | None = None
    for event in sorted(events, key=lambda e: _field(e, "at") or dt.datetime.min.replace(tzinfo=dt.UTC)):
        kind, at = _name(_field(event, "type")), _field(event, "at")
        if kind == "SUPPLEMENT_REQUESTED" and start is None:
            start = at
        elif kind == "SUPPLEMENT_RECEIVED" and start is not None and at is not None:
            pauses.append(Pause(start, at))
            start = None
    if start is not None:
        pauses.append(Pause(start, None))
    return pauses


def _field(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, dict) else getattr(event, name, None)
