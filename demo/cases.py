"""Service items and cases for the demo dataset, with timelines consistent with each case's status.

A timeline runs RECEIVED → ACCEPTED → [SUPPLEMENT_REQUESTED → SUPPLEMENT_RECEIVED] → APPROVED|REJECTED →
COMPLETED; a case's status is its last step (ACCEPTED again once a supplement is received). Every event lies before
midnight of ``today``; open cases were submitted within their promised days plus a week, so some are overdue.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from demo.model import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID, Case, CaseEvent, LegalEntity, Person, ServiceItem
from demo.reference import FEMALE_GIVEN, MALE_GIVEN, SERVICE_ITEMS, SURNAMES

__all__ = ["CASE_COUNT", "SERVICE_ITEM_REGION", "generate_cases", "generate_service_items"]

CASE_COUNT = 2400
# The approval platform is the 北京市朝阳区 one; item codes start with its region code.
SERVICE_ITEM_REGION = "110105"

_STATUSES = ("COMPLETED", "REJECTED", "APPROVED", "ACCEPTED", "SUPPLEMENT_REQUESTED", "RECEIVED")
_STATUS_WEIGHTS = (55, 4, 8, 15, 6, 12)
# The sample person's open case handled by the Civil Affairs Bureau: the demo clerk's purpose (SAMPLE_PURPOSE_INDEX).
SAMPLE_PURPOSE_INDEX = 3
SAMPLE_PURPOSE_ITEM = "最低生活保障审核确认"
_SAMPLE_PLAN = (
    ("PERSON", SAMPLE_PERSON_ID, "COMPLETED"),
    ("PERSON", SAMPLE_PERSON_ID, "COMPLETED"),
    ("PERSON", SAMPLE_PERSON_ID, "ACCEPTED"),
    ("PERSON", SAMPLE_PERSON_ID, "SUPPLEMENT_REQUESTED"),
    ("PERSON", SAMPLE_PERSON_ID, "RECEIVED"),
    ("LEGAL_ENTITY", SAMPLE_ENTITY_CODE, "COMPLETED"),
    ("LEGAL_ENTITY", SAMPLE_ENTITY_CODE, "APPROVED"),
    ("LEGAL_ENTITY", SAMPLE_ENTITY_CODE, "ACCEPTED"),
    ("LEGAL_ENTITY", SAMPLE_ENTITY_CODE, "REJECTED"),
)
_MISSING = ("身份证明复印件", "营业执照副本", "房屋租赁合同", "法定代表人授权委托书", "近期免冠照片", "经营场所平面图")
_NOTES = {
    "RECEIVED": "材料已接收",
    "ACCEPTED": "材料齐全，符合法定形式，予以受理",
    "SUPPLEMENT_RECEIVED": "补正材料已接收",
    "APPROVED": "符合条件，准予许可",
    "REJECTED": "不符合法定条件，不予许可",
}


def generate_service_items() -> list[ServiceItem]:
    """One item per template; code = region + 3-digit department + 5-digit sequence, e.g. 11010500100001."""
    departments: dict[str, int] = {}
    sequence: dict[str, int] = {}
    items = []
    for spec in SERVICE_ITEMS:
        dept = departments.setdefault(spec.department, len(departments) + 1)
        sequence[spec.department] = sequence.get(spec.department, 0) + 1
        code = f"{SERVICE_ITEM_REGION}{dept:03d}{sequence[spec.department]:05d}"
        items.append(ServiceItem(code, spec.name, spec.department, spec.promised_days, spec.for_entities))
    return items


def generate_cases(
    rng: random.Random,
    today: dt.date,
    persons: Sequence[Person],
    entities: Sequence[LegalEntity],
    items: Sequence[ServiceItem],
) -> list[Case]:
    """:data:`CASE_COUNT` cases, the sample person's and entity's first."""
    midnight = dt.datetime.combine(today, dt.time())
    for_persons = [i for i in items if not i.for_entities]
    for_entities = [i for i in items if i.for_entities]
    cases = []
    for index in range(1, CASE_COUNT + 1):
        if index <= len(_SAMPLE_PLAN):
            kind, applicant, status = _SAMPLE_PLAN[index - 1]
        else:
            kind = "PERSON" if rng.random() < 0.72 else "LEGAL_ENTITY"
            applicant = rng.choice(persons).id_number if kind == "PERSON" else rng.choice(entities).credit_code
            status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
        item = rng.choice(for_persons if kind == "PERSON" else for_entities)
        if index == SAMPLE_PURPOSE_INDEX:  # drawn anyway, so the rest of the data does not move
            item = next(i for i in for_persons if i.name == SAMPLE_PURPOSE_ITEM)
        cases.append(_case(rng, midnight, index, kind, applicant, status, item))
    return cases


def _steps(rng: random.Random, status: str) -> list[str]:
    if status == "RECEIVED":
        return ["RECEIVED"]
    path = ["RECEIVED", "ACCEPTED"]
    if status == "SUPPLEMENT_REQUESTED":
        return [*path, "SUPPLEMENT_REQUESTED"]
    if rng.random() < 0.25:
        path += ["SUPPLEMENT_REQUESTED", "SUPPLEMENT_RECEIVED"]
    if status == "ACCEPTED":
        return path
    if status in ("APPROVED", "REJECTED"):
        return [*path, status]
    return [*path, "REJECTED" if rng.random() < 0.1 else "APPROVED", "COMPLETED"]


def _clerk(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(MALE_GIVEN + FEMALE_GIVEN) + rng.choice(MALE_GIVEN + FEMALE_GIVEN)


def _note(rng: random.Random, step: str, steps: Sequence[str]) -> str:
    if step == "SUPPLEMENT_REQUESTED":
        return f"材料不全，请补正：{rng.choice(_MISSING)}"
    if step == "COMPLETED":
        return "已办结，不予许可决定书已送达" if "REJECTED" in steps else "已办结，结果已送达"
    return _NOTES[step]


def _case(
    rng: random.Random, midnight: dt.datetime, index: int, kind: str, applicant: str, status: str, item: ServiceItem
) -> Case:
    days = item.promised_days
    back = rng.randint(days + 1, 720) if status == "COMPLETED" else rng.randint(1, days + 7)
    submitted = dt.datetime.combine(midnight.date() - dt.timedelta(days=back), dt.time(8, 30))
    submitted += dt.timedelta(minutes=rng.randint(0, 540))
    steps = _steps(rng, status)
    latest = midnight - dt.timedelta(minutes=1)
    if status == "COMPLETED":
        late = rng.random() < 0.1
        taken = days * (rng.uniform(1.0, 1.6) if late else rng.uniform(0.2, 1.0))
        end = min(submitted + dt.timedelta(days=taken), latest)
    else:
        end = latest
    total = int((end - submitted).total_seconds())
    offsets = sorted(rng.randint(60, total) for _ in steps[1:])
    if status == "COMPLETED" and offsets:
        offsets[-1] = total
    times = [submitted]
    for offset in offsets:
        times.append(max(submitted + dt.timedelta(seconds=offset), times[-1] + dt.timedelta(seconds=1)))
    window = f"综合窗口{rng.randint(1, 30):02d}号"
    events = tuple(
        CaseEvent(
            step,
            at.replace(microsecond=0),
            f"{window} {_clerk(rng)}" if step == "RECEIVED" else f"{item.department} {_clerk(rng)}",
            _note(rng, step, steps),
        )
        for step, at in zip(steps, times, strict=True)
    )
    return Case(
        case_number=f"BJ{submitted:%Y%m%d}{index:06d}",
        service_item=item.code,
        applicant_kind=kind,
        applicant_id=applicant,
        status=status,
        submitted_at=submitted,
        deadline=submitted + dt.timedelta(days=days),
        closed_at=times[-1] if status == "COMPLETED" else None,
        events=events,
    )
