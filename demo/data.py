"""The demo dataset: persons, legal entities, service items and cases, drawn deterministically from a seed.

Dates are relative to ``today`` so that open cases are on time, close to their deadline or overdue on any day.
Two keys are always present with full data in every department that holds their kind:
:data:`SAMPLE_PERSON_ID` (a woman born 1949-12-31 in 北京市朝阳区) and :data:`SAMPLE_ENTITY_CODE`.

    >>> data = build_dataset(today=dt.date(2026, 1, 5))
    >>> data.sample_person.name, data.sample_person.birth_date
    ('王秀英', datetime.date(1949, 12, 31))
    >>> len(data.persons) >= 1000 and len(data.cases) >= 2000
    True

Relations are drawn last, from a random stream of their own, so that adding them changed no earlier value: every
married person gets a spouse (a person of its own, appended, whose marriage record names them in turn), a couple
shares a household, everyone else lives alone -- but for the sample person, who lives with her grandson.

    >>> spouse = data.persons_by_id[next(p for p in data.persons if p.marriage.spouse_id).marriage.spouse_id]
    >>> data.persons_by_id[spouse.marriage.spouse_id].marriage.spouse_id == spouse.id_number
    True
    >>> [data.persons_by_id[m].name for m in data.household_members(SAMPLE_PERSON_ID)]
    ['王建国']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from functools import lru_cache

from demo.cases import generate_cases, generate_service_items
from demo.enterprises import generate_entities
from demo.licensing import person_licences
from demo.model import (
    SAMPLE_ENTITY_CODE,
    SAMPLE_PERSON_ID,
    Case,
    CaseEvent,
    Dataset,
    Degree,
    LegalEntity,
    Licence,
    Marriage,
    Person,
    ServiceItem,
    SocialInsurance,
)
from demo.reference import (
    COMPOUND_SURNAMES,
    DEGREE_MAJORS,
    ETHNICITIES,
    FEMALE_GIVEN,
    MALE_GIVEN,
    MINORITY_REGIONS,
    REGIONS,
    REGIONS_BY_CODE,
    SCHOOLS,
    STREETS,
    SURNAMES,
    Region,
)
from gateway.keys import id_number_check_char

__all__ = [
    "DEFAULT_SEED",
    "PERSON_COUNT",
    "SAMPLE_ENTITY_CODE",
    "SAMPLE_PERSON_ID",
    "Case",
    "CaseEvent",
    "Dataset",
    "Degree",
    "LegalEntity",
    "Licence",
    "Marriage",
    "Person",
    "ServiceItem",
    "SocialInsurance",
    "build_dataset",
]

DEFAULT_SEED = 20260101
PERSON_COUNT = 1200

_DEGREE_LEVELS = (("大学专科", "5", 21), ("本科", "4", 22), ("硕士研究生", "2", 25), ("博士研究生", "1", 28))


def build_dataset(seed: int = DEFAULT_SEED, today: dt.date | None = None) -> Dataset:
    """The dataset for ``seed`` as of ``today`` (default: the current date); built once per pair."""
    return _build(seed, today or dt.date.today())


@lru_cache(maxsize=8)
def _build(seed: int, today: dt.date) -> Dataset:
    rng = random.Random(seed)
    persons = _generate_persons(rng, today)
    entities = generate_entities(rng, today, persons)
    items = generate_service_items()
    cases = generate_cases(rng, today, persons, entities, items)
    persons = _relate(random.Random(f"{seed}:relations"), today, persons)
    return Dataset(seed, today, tuple(persons), tuple(entities), tuple(items), tuple(cases))


def _generate_persons(rng: random.Random, today: dt.date) -> list[Person]:
    persons = [_sample_person(rng, today)]
    used = {SAMPLE_PERSON_ID}
    while len(persons) < PERSON_COUNT:
        person = _random_person(rng, today)
        if person.id_number not in used:
            used.add(person.id_number)
            persons.append(person)
    return persons


def _relate(rng: random.Random, today: dt.date, persons: list[Person]) -> list[Person]:
    """``persons`` with their spouses and households: a spouse for every married person (appended after them),
    one household per couple, the sample person's grandson in her household, everyone else alone."""
    used = {p.id_number for p in persons}
    related: list[Person] = []
    spouses: list[Person] = []
    households = _HouseholdNumbers()
    for person in persons:
        if person.id_number == SAMPLE_PERSON_ID:
            number = households.next(person.region)
            grandson = _grandson(rng, today, person, used)
            related.append(dataclasses.replace(person, household_number=number))
            spouses.append(dataclasses.replace(grandson, household_number=number))
        elif person.marriage.status == "MARRIED":
            number = households.next(person.region)
            spouse = _spouse(rng, today, person, used)
            marriage = dataclasses.replace(person.marriage, spouse_id=spouse.id_number)
            related.append(dataclasses.replace(person, marriage=marriage, household_number=number))
            spouses.append(dataclasses.replace(spouse, household_number=number))
        else:
            related.append(dataclasses.replace(person, household_number=households.next(person.region)))
    return related + spouses


class _HouseholdNumbers:
    """户号: the region code and a running number (``110105000001``)."""

    def __init__(self) -> None:
        self.count = 0

    def next(self, region: Region) -> str:
        self.count += 1
        return f"{region.code}{self.count:06d}"


def _new_person(
    rng: random.Random, today: dt.date, region: Region, gender: str, birth: dt.date, marriage: Marriage, used: set[str]
) -> Person:
    """A person drawn like the others, but born on ``birth`` in ``region`` with ``marriage``."""
    while True:
        sequence = 2 * rng.randrange(0, 499) + (1 if gender == "MALE" else 2)
        id_number = _id_number(region, birth, sequence)
        if id_number not in used:
            used.add(id_number)
            break
    name = _name(rng, gender)
    degree_count = rng.choices((0, 1, 2, 3), (35, 40, 18, 7))[0]
    return _drawn(rng, today, id_number, name, gender, birth, region, marriage, degree_count)


def _spouse(rng: random.Random, today: dt.date, partner: Person, used: set[str]) -> Person:
    """The spouse of a married ``partner``: the other sex, of about their age, at least 22 (and at most 45) when
    the marriage was registered, in the same register (a first marriage), naming ``partner`` as spouse."""
    registered = partner.marriage.registered_on
    assert registered is not None
    birth = partner.birth_date + dt.timedelta(days=rng.randint(-5 * 365, 5 * 365))
    birth = max(min(birth, _years_after(registered, -22)), _years_after(registered, -45))
    gender = "FEMALE" if partner.gender == "MALE" else "MALE"
    marriage = Marriage("20", registered, partner.marriage.registry, partner.id_number)
    return _new_person(rng, today, partner.region, gender, birth, marriage, used)


def _grandson(rng: random.Random, today: dt.date, grandmother: Person, used: set[str]) -> Person:
    """The sample person's grandson: unmarried, in his twenties, registered in her household."""
    birth = _years_after(today, -rng.randint(23, 28)) - dt.timedelta(days=rng.randint(0, 364))
    grandson = _new_person(rng, today, grandmother.region, "MALE", birth, Marriage("10", None, None), used)
    return dataclasses.replace(grandson, name="王建国")


def _drawn(
    rng: random.Random,
    today: dt.date,
    id_number: str,
    name: str,
    gender: str,
    birth: dt.date,
    region: Region,
    marriage: Marriage,
    degree_count: int,
) -> Person:
    """A person's remaining attributes, drawn from ``rng`` in a fixed order (the seed decides them all)."""
    return Person(
        id_number=id_number,
        name=name,
        gender=gender,
        ethnicity_code=_ethnicity(rng, region),
        birth_date=birth,
        region=region,
        address=_address(rng, region),
        phone=_phone(rng),
        marriage=marriage,
        social_insurance=_social_insurance(rng, region, birth, today) if rng.random() < 0.88 else None,
        degrees=_degrees(rng, birth, today, degree_count),
        licences=person_licences(rng, today, id_number, name, region, birth, marriage),
    )


def _id_number(region: Region, birth: dt.date, sequence: int) -> str:
    body = f"{region.code}{birth:%Y%m%d}{sequence:03d}"
    return body + id_number_check_char(body)


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _age(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _name(rng: random.Random, gender: str) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.02 else rng.choice(SURNAMES)
    chars = MALE_GIVEN if gender == "MALE" else FEMALE_GIVEN
    given = "".join(rng.choice(chars) for _ in range(1 if rng.random() < 0.3 else 2))
    return surname + given


def _address(rng: random.Random, region: Region) -> str:
    street = f"{region.full_name}{rng.choice(STREETS)}{rng.randint(1, 300)}号"
    if rng.random() < 0.8:
        street += f"{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元{rng.randint(1, 28)}{rng.randint(1, 4):02d}室"
    return street


def _phone(rng: random.Random) -> str:
    return rng.choice(("13", "15", "17", "18", "19")) + "".join(str(rng.randint(0, 9)) for _ in range(9))


def _ethnicity(rng: random.Random, region: Region) -> str:
    minority = MINORITY_REGIONS.get(region.code)
    if minority and rng.random() < minority[1]:
        return minority[0]
    if rng.random() < 0.95:
        return "01"
    return rng.choice([c for c in ETHNICITIES if c != "01"])


def _marriage(rng: random.Random, region: Region, birth: dt.date, today: dt.date) -> Marriage:
    age = _age(birth, today)
    if age < 22:
        return Marriage("10", None, None)
    weights = (50, 45, 0, 5) if age < 30 else (8, 80, 2, 10) if age < 60 else (2, 70, 22, 6)
    status = rng.choices(("10", "20", "30", "40"), weights)[0]
    if status == "10":
        return Marriage("10", None, None)
    if status == "20" and rng.random() < 0.1:
        status = "22"
    earliest = _years_after(birth, 22)
    latest = min(today - dt.timedelta(days=30), _years_after(birth, 45))
    registered = earliest + dt.timedelta(days=rng.randint(0, max(0, (latest - earliest).days)))
    return Marriage(status, registered, f"{region.city}{region.district}民政局婚姻登记处")


def _social_insurance(rng: random.Random, region: Region, birth: dt.date, today: dt.date) -> SocialInsurance:
    start = max(_years_after(birth, rng.randint(18, 26)), dt.date(1995, 1, 1))
    since = min(start, today - dt.timedelta(days=31)).replace(day=1)
    span = (today.year - since.year) * 12 + today.month - since.month
    months = max(1, int(span * rng.uniform(0.6, 1.0)))
    return SocialInsurance(rng.random() < 0.9, months, region.city, since)


def _degrees(rng: random.Random, birth: dt.date, today: dt.date, count: int) -> tuple[Degree, ...]:
    first = 0 if rng.random() < 0.25 else 1
    degrees = []
    for level in range(first, min(first + count, len(_DEGREE_LEVELS))):
        name, level_code, age = _DEGREE_LEVELS[level]
        graduated = _years_after(birth, age).replace(month=7, day=rng.randint(1, 10))
        if graduated >= today:
            break
        school_code, school = rng.choice(SCHOOLS)
        certificate = f"{school_code}{level_code}{graduated.year}{rng.randint(0, 99_999_999):08d}"
        degrees.append(Degree(name, school, rng.choice(DEGREE_MAJORS), graduated, certificate))
    return tuple(degrees)


def _random_person(rng: random.Random, today: dt.date) -> Person:
    region = rng.choice(REGIONS)
    gender = rng.choice(("MALE", "FEMALE"))
    birth = today - dt.timedelta(days=rng.randint(18 * 366, 85 * 365))
    sequence = 2 * rng.randrange(0, 499) + (1 if gender == "MALE" else 2)
    id_number = _id_number(region, birth, sequence)
    name = _name(rng, gender)
    degree_count = rng.choices((0, 1, 2, 3), (35, 40, 18, 7))[0]
    marriage = _marriage(rng, region, birth, today)
    return _drawn(rng, today, id_number, name, gender, birth, region, marriage, degree_count)


def _sample_person(rng: random.Random, today: dt.date) -> Person:
    region = REGIONS_BY_CODE["110105"]
    birth = dt.date(1949, 12, 31)
    marriage = Marriage("30", dt.date(1972, 5, 1), "北京市朝阳区民政局婚姻登记处")
    licences = person_licences(rng, today, SAMPLE_PERSON_ID, "王秀英", region, birth, marriage, sample=True)
    return Person(
        id_number=SAMPLE_PERSON_ID,
        name="王秀英",
        gender="FEMALE",
        ethnicity_code="01",
        birth_date=birth,
        region=region,
        address="北京市朝阳区建国路88号3号楼2单元501室",
        phone="13800138000",
        marriage=marriage,
        social_insurance=SocialInsurance(True, 348, "北京市", dt.date(1992, 1, 1)),
        degrees=(Degree("本科", "北京师范大学", "汉语言文学", dt.date(1982, 7, 5), "100274198200000123"),),
        licences=licences,
    )
