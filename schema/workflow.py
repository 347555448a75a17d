"""The case workflow as GraphQL: the window's mutations, the supervisors' deadline view and case events as they
happen (over WebSocket ``graphql-transport-ws`` and over SSE). The rules live in :mod:`gateway.workflow`.

mutation { receiveApplication(input: {idempotencyKey: "k-1", serviceItem: "11010500100001",
                                      applicant: "11010519491231002X"}) { caseNumber status event at replayed } }
subscription { caseEvents(department: "民政局") { caseNumber event at handler note status } }
{ caseDeadlines(department: "民政局") { caseNumber state workingDaysLeft due paused } }
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator

import strawberry

from auth.policy import Policy
from auth.principal import Principal, PrincipalKind
from gateway.case_events import CaseNotice
from gateway.errors import BadUserInput, Forbidden, GatewayError
from gateway.sources import encode_cursor
from gateway.workflow import CaseOutcome, CaseWorkflow
from schema.context import GatewayInfo
from schema.enums import CaseStatus, EventType, WarningState

__all__ = ["CaseActionResult", "CaseDeadline", "CaseEventNotice", "WorkflowMutation", "WorkflowSubscription",
           "case_deadlines"]  # fmt: skip

MAX_DEADLINES = 500
_OPEN_STATUSES = (CaseStatus.RECEIVED, CaseStatus.ACCEPTED, CaseStatus.SUPPLEMENT_REQUESTED, CaseStatus.APPROVED)
_PAGE = 100


class WorkflowNotConfigured(GatewayError):
    code = "WORKFLOW_NOT_CONFIGURED"


@strawberry.type(description="What a workflow action did; replayed: the answer to an earlier request with this key.")
class CaseActionResult:
    case_number: str
    status: CaseStatus
    event: EventType | None = strawberry.field(description="The event written; null for a rating.")
    at: dt.datetime
    handler: str | None
    note: str | None
    replayed: bool


@strawberry.type(description="One event of a case as it happens.")
class CaseEventNotice:
    case_number: str
    event: EventType
    at: dt.datetime
    handler: str | None
    note: str | None
    status: CaseStatus
    service_item: str
    department: str


@strawberry.type(description="An open case against its promised working days (the clock stops while it waits).")
class CaseDeadline:
    case_number: str
    service_item: str
    status: CaseStatus
    state: WarningState
    working_days_used: int
    working_days_left: int = strawberry.field(description="Negative once overdue.")
    due: dt.date = strawberry.field(description="The last working day, if the clock runs on from today.")
    paused: bool = strawberry.field(description="Waiting for the applicant's supplementary materials (补正).")


@strawberry.input(description="A new application at the window (收件): the case starts RECEIVED.")
class ReceiveApplicationInput:
    idempotency_key: str
    service_item: str = strawberry.field(description="The service item's code (事项编码).")
    applicant: str = strawberry.field(description="A citizen ID number or unified social credit code.")
    note: str | None = None


@strawberry.input(description="Ask the applicant for supplementary materials (补正).")
class RequestSupplementInput:
    idempotency_key: str
    case_number: str
    missing_materials: list[str]
    note: str | None = None


@strawberry.input(description="The applicant brought the supplementary materials.")
class ReceiveSupplementInput:
    idempotency_key: str
    case_number: str
    note: str | None = None


@strawberry.input(description="The applicant's rating of a completed case (好差评), once per case.")
class RateCaseInput:
    idempotency_key: str
    case_number: str
    score: int = strawberry.field(description="1 (very poor) to 5 (very good).")
    comment: str | None = None


def _workflow(info: GatewayInfo) -> CaseWorkflow:
    workflow = info.context.workflow
    if workflow is None:
        raise WorkflowNotConfigured("this gateway has no case workflow (workflow: in its configuration)")
    return workflow


def _result(outcome: CaseOutcome) -> CaseActionResult:
    return CaseActionResult(
        case_number=outcome.case_number,
        status=CaseStatus(outcome.status),
        event=EventType(outcome.event) if outcome.event is not None else None,
        at=dt.datetime.fromisoformat(outcome.at),
        handler=outcome.handler,
        note=outcome.note,
        replayed=outcome.replayed,
    )


@strawberry.type
class WorkflowMutation:
    @strawberry.mutation(description="Receive an application: a new case, RECEIVED, written to the approval platform.")
    async def receive_application(self, info: GatewayInfo, input: ReceiveApplicationInput) -> CaseActionResult:
        context = info.context
        outcome = await _workflow(info).receive(
            context.access, context.audit, input.idempotency_key, input.service_item, input.applicant, input.note
        )
        return _result(outcome)

    @strawberry.mutation(description="Request supplementary materials (补正): SUPPLEMENT_REQUESTED; the clock stops.")
    async def request_supplement(self, info: GatewayInfo, input: RequestSupplementInput) -> CaseActionResult:
        context = info.context
        outcome = await _workflow(info).request_supplement(
            context.access, context.audit, input.idempotency_key, input.case_number, input.missing_materials,
            input.note,
        )  # fmt: skip
        return _result(outcome)

    @strawberry.mutation(description="The supplementary materials arrived: SUPPLEMENT_RECEIVED; the clock runs on.")
    async def receive_supplement(self, info: GatewayInfo, input: ReceiveSupplementInput) -> CaseActionResult:
        context = info.context
        outcome = await _workflow(info).receive_supplement(
            context.access, context.audit, input.idempotency_key, input.case_number, input.note
        )
        return _result(outcome)

    @strawberry.mutation(description="Record the applicant's rating (好差评) of a completed case, once per case.")
    async def rate_case(self, info: GatewayInfo, input: RateCaseInput) -> CaseActionResult:
        context = info.context
        outcome = await _workflow(info).rate(
            context.access, context.audit, input.idempotency_key, input.case_number, input.score, input.comment
        )
        return _result(outcome)


def _may_hear(principal: Principal, notice: CaseNotice, policy: Policy) -> bool:
    """Staff hear the cases they may act on (their department's items, or those their comprehensive window takes
    in), a citizen their own, a supervisor every case."""
    if principal.kind is PrincipalKind.OFFICER and principal.has_role(policy.config.supervisor_role):
        return True
    if principal.kind in (PrincipalKind.CLERK, PrincipalKind.OFFICER):
        return policy.handles_item(principal, notice.service_item, notice.department) is not None
    return principal.kind is PrincipalKind.CITIZEN and principal.id_number == notice.applicant


@strawberry.type(name="Subscription", description="Events pushed to the front ends.")
class WorkflowSubscription:
    @strawberry.subscription(
        description="Case events as they happen: those of the caller's department (staff), their own (a citizen), "
        "or every case (a supervisor); narrowed to one case or department when given."
    )
    async def case_events(
        self, info: GatewayInfo, case_number: str | None = None, department: str | None = None
    ) -> AsyncGenerator[CaseEventNotice, None]:
        workflow = _workflow(info)
        principal = info.context.principal
        if principal.kind not in (PrincipalKind.CLERK, PrincipalKind.OFFICER, PrincipalKind.CITIZEN):
            raise Forbidden("ENTITY_NOT_ALLOWED", "case events are for staff and applicants")
        policy = info.context.access.policy
        async with workflow.events.subscribe() as notices:
            async for notice in notices:
                if case_number is not None and notice.case_number != case_number.strip():
                    continue
                if department is not None and notice.department != department:
                    continue
                if not _may_hear(principal, notice, policy):
                    continue
                yield CaseEventNotice(
                    case_number=notice.case_number,
                    event=EventType(notice.event),
                    at=dt.datetime.fromisoformat(notice.at),
                    handler=notice.handler,
                    note=notice.note,
                    status=CaseStatus(notice.status),
                    service_item=notice.service_item,
                    department=notice.department,
                )


# What a line of caseDeadlines discloses of its case, as the audit records it.
_LISTED = ("caseNumber", "serviceItem", "status", "deadline", "warningState")


async def case_deadlines(
    info: GatewayInfo, department: str, states: list[WarningState] | None = None
) -> list[CaseDeadline]:
    """Open cases of ``department`` in ``states`` (WARNING and OVERDUE by default), the most overdue first."""
    workflow = _workflow(info)
    access = info.context.access
    role = access.policy.config.supervisor_role
    principal = access.principal
    if principal.kind is not PrincipalKind.OFFICER or not principal.has_role(role):
        raise Forbidden("ROLE_REQUIRED", f"caseDeadlines is for officers holding the {role} role")
    wanted = set(states) if states is not None else {WarningState.WARNING, WarningState.OVERDUE}
    if WarningState.CLOSED in wanted:
        raise BadUserInput("caseDeadlines lists open cases: ask for ON_TIME, WARNING or OVERDUE")
    access.fail_closed("Case")  # the listing discloses cases: nothing is asked that could not be recorded
    sources = info.context.sources
    items = await _all_keys(info, "ServiceItem", {"department": department})
    numbers: list[str] = []
    for item in items:
        for status in _OPEN_STATUSES:
            numbers += await _all_keys(info, "Case", {"serviceItem": item, "status": status})
    now = info.context.now
    counted = await asyncio.gather(*(workflow.deadline(sources, n, now) for n in numbers))
    found = []
    for number, count in zip(numbers, counted, strict=True):
        if count is None:
            continue
        state = WarningState(workflow.warning(count))
        if state in wanted:
            found.append((number, count, state))
    found.sort(key=lambda f: (f[1].left, f[0]))
    out = []
    where = info.path.as_list()
    for index, (number, count, state) in enumerate(found[:MAX_DEADLINES]):
        item_key = await sources.value("Case", number, "serviceItem")
        case_status = await sources.value("Case", number, "status")
        access.released("Case", number, _LISTED, (*where, index))
        out.append(
            CaseDeadline(
                case_number=number,
                service_item=getattr(item_key, "key", ""),
                status=case_status,
                state=state,
                working_days_used=count.used,
                working_days_left=count.left,
                due=count.due,
                paused=count.paused,
            )
        )
    return out


async def _all_keys(info: GatewayInfo, entity: str, filters: dict[str, object]) -> list[str]:
    keys: list[str] = []
    after: str | None = None
    while len(keys) < 10 * MAX_DEADLINES:
        page = await info.context.sources.search(entity, filters, first=_PAGE, after=after)
        keys += page.keys
        if not page.has_next or not page.keys:
            return keys
        after = encode_cursor(page.offset + len(page.keys) - 1)
    return keys
