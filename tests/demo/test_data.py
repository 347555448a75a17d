"""The demo dataset: sizes, valid keys, determinism, consistent cases and the two sample keys."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from demo import data
from demo.data import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID, Dataset, build_dataset
from gateway.keys import birth_date_of, parse_credit_code, parse_id_number, sex_of
from tests.demo.conftest import TODAY

_NEXT = {
    None: {"RECEIVED"},
    "RECEIVED": {"ACCEPTED"},
    "ACCEPTED": {"SUPPLEMENT_REQUESTED", "APPROVED", "REJECTED"},
    "SUPPLEMENT_REQUESTED": {"SUPPLEMENT_RECEIVED"},
    "SUPPLEMENT_RECEIVED": {"APPROVED", "REJECTED"},
    "APPROVED": {"COMPLETED"},
    "REJECTED": {"COMPLETED"},
}


def test_dataset_has_the_promised_sizes(dataset: Dataset) -> None:
    assert len(dataset.persons) >= 1000
    assert len(dataset.entities) >= 200
    assert len(dataset.service_items) >= 30
    assert len(dataset.cases) >= 2000


def test_every_id_number_is_valid_unique_and_agrees_with_the_person(dataset: Dataset) -> None:
    ids = [p.id_number for p in dataset.persons]
    assert len(set(ids)) == len(ids)
    for person in dataset.persons:
        assert parse_id_number(person.id_number, today=TODAY) == person.id_number
        assert sex_of(person.id_number) == person.gender
        assert birth_date_of(person.id_number) == person.birth_date
        assert person.id_number[:6] == person.region.code
        assert len(person.phone) == 11
        assert person.phone.isdigit()


def test_every_credit_code_is_valid_and_represented_by_a_known_person(dataset: Dataset) -> None:
    codes = [e.credit_code for e in dataset.entities]
    assert len(set(codes)) == len(codes)
    for entity in dataset.entities:
        assert parse_credit_code(entity.credit_code) == entity.credit_code
        assert entity.credit_code[0] == "9"
        assert entity.credit_code[1] in "123"
        assert entity.legal_representative in dataset.persons_by_id
        assert entity.registered_capital.as_tuple().exponent == -2
        assert entity.registered_capital > 0


def test_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    build = data._build.__wrapped__
    first, again = build(7, TODAY), build(7, TODAY)
    assert first.persons == again.persons
    assert first.entities == again.entities
    assert first.cases == again.cases
    other = build(8, TODAY)
    assert [p.id_number for p in other.persons[1:10]] != [p.id_number for p in first.persons[1:10]]


def test_build_dataset_is_cached_per_seed_and_day() -> None:
    assert build_dataset(3, TODAY) is build_dataset(3, TODAY)
    assert build_dataset().today == dt.date.today()


def test_sample_person_has_data_in_every_department(dataset: Dataset) -> None:
    person = dataset.persons_by_id[SAMPLE_PERSON_ID]
    assert person.birth_date == dt.date(1949, 12, 31)
    assert person.gender == "FEMALE"
    assert person.region.full_name == "北京市朝阳区"
    assert person.address.startswith("北京市朝阳区")
    assert person.ethnicity == "汉族"
    assert person.marriage.registered_on is not None
    assert person.social_insurance is not None
    assert person.degrees
    assert person.licences
    assert dataset.cases_by_applicant[SAMPLE_PERSON_ID]


def test_sample_entity_has_data_in_every_department(dataset: Dataset) -> None:
    entity = dataset.entities_by_code[SAMPLE_ENTITY_CODE]
    assert entity.legal_representative in dataset.persons_by_id
    assert entity.registered_capital == Decimal("5000000.00")
    assert any(lic.type == "营业执照" for lic in entity.licences)
    assert dataset.cases_by_applicant[SAMPLE_ENTITY_CODE]


def test_cases_have_timelines_consistent_with_their_status(dataset: Dataset) -> None:
    midnight = dt.datetime.combine(TODAY, dt.time())
    numbers = [c.case_number for c in dataset.cases]
    assert len(set(numbers)) == len(numbers)
    for case in dataset.cases:
        item = dataset.service_items_by_code[case.service_item]
        assert case.deadline - case.submitted_at == dt.timedelta(days=item.promised_days)
        assert case.case_number.startswith(f"BJ{case.submitted_at:%Y%m%d}")
        assert item.for_entities == (case.applicant_kind == "LEGAL_ENTITY")
        if case.applicant_kind == "PERSON":
            assert case.applicant_id in dataset.persons_by_id
        else:
            assert case.applicant_id in dataset.entities_by_code
        previous = None
        for event in case.events:
            assert event.type in _NEXT[previous], case
            previous = event.type
        times = [e.at for e in case.events]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        assert case.events[0].at == case.submitted_at
        assert times[-1] < midnight
        expected = "ACCEPTED" if previous == "SUPPLEMENT_RECEIVED" else previous
        assert case.status == expected
        assert case.closed_at == (times[-1] if case.status == "COMPLETED" else None)


def test_open_cases_are_a_mix_of_on_time_and_overdue(dataset: Dataset) -> None:
    now = dt.datetime.combine(TODAY, dt.time(9))
    open_cases = [c for c in dataset.cases if c.closed_at is None]
    overdue = [c for c in open_cases if c.deadline < now]
    close = [c for c in open_cases if now <= c.deadline < now + dt.timedelta(days=2)]
    assert overdue
    assert close
    assert len(overdue) < len(open_cases)


def test_licence_status_agrees_with_validity(dataset: Dataset) -> None:
    for licences in dataset.licences_by_holder.values():
        for licence in licences:
            if licence.status == "EXPIRED":
                assert licence.valid_until is not None
                assert licence.valid_until < TODAY
            if licence.status == "VALID":
                assert licence.valid_until is None or licence.valid_until >= TODAY


def test_every_married_person_has_a_spouse_who_names_them_in_turn(dataset: Dataset) -> None:
    married = [p for p in dataset.persons if p.marriage.status == "MARRIED"]
    assert len(married) > 500
    for person in married:
        assert person.marriage.spouse_id is not None, person.id_number
        spouse = dataset.persons_by_id[person.marriage.spouse_id]
        assert spouse.marriage.spouse_id == person.id_number
        assert spouse.gender != person.gender
        assert spouse.marriage.status == "MARRIED"
        assert spouse.marriage.registered_on == person.marriage.registered_on
        assert spouse.marriage.registry == person.marriage.registry
        assert spouse.household_number == person.household_number
    assert all(p.marriage.spouse_id is None for p in dataset.persons if p.marriage.status != "MARRIED")


def test_households_hold_couples_the_sample_person_and_her_grandson_and_people_alone(dataset: Dataset) -> None:
    for number, members in dataset.households.items():
        assert len(members) in (1, 2), number
        assert number[:6] == dataset.persons_by_id[members[0]].region.code
    assert dataset.household_members(SAMPLE_PERSON_ID) == tuple(
        p.id_number for p in dataset.persons if p.name == "王建国" and p.region.code == "110105"
    )
    grandson = dataset.persons_by_id[dataset.household_members(SAMPLE_PERSON_ID)[0]]
    assert grandson.marriage.status == "SINGLE"
    assert dataset.household_members("110105194912310021") == ()


def test_relations_leave_the_persons_drawn_before_them_unchanged(dataset: Dataset) -> None:
    sample = dataset.sample_person
    assert sample.marriage.spouse_id is None  # widowed
    assert sample.phone == "13800138000"
    assert dataset.persons[: data.PERSON_COUNT] == tuple(
        p for p in dataset.persons if p.id_number not in _added(dataset)
    )


def _added(dataset: Dataset) -> set[str]:
    """Persons added by the relations: spouses of the first PERSON_COUNT, and the sample person's grandson."""
    first = dataset.persons[: data.PERSON_COUNT]
    return {p.marriage.spouse_id for p in first if p.marriage.spouse_id} | set(
        dataset.household_members(SAMPLE_PERSON_ID)
    )


def test_entities_by_representative_lists_every_entity_once(dataset: Dataset) -> None:
    listed = [e for entities in dataset.entities_by_representative.values() for e in entities]
    assert sorted(e.credit_code for e in listed) == sorted(e.credit_code for e in dataset.entities)
    assert dataset.sample_entity in dataset.entities_by_representative[SAMPLE_PERSON_ID]
