from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.config import FieldMap
from gateway.errors import BadSourceData
from gateway.mapping import CHINA_STANDARD_TIME, EntityKey, read_field, read_path
from schema.catalog import CATALOG
from schema.enums import Gender, MaritalStatus

PERSON = CATALOG["Person"].fields
CASE = CATALOG["Case"].fields
ENTITY = CATALOG["LegalEntity"].fields


def test_paths_walk_mappings_and_lists() -> None:
    record = {"Persons": {"Person": [{"XM": "张三"}, {"XM": "李四"}]}}
    assert read_path(record, "Persons.Person.1.XM") == "李四"
    assert read_path(record, "Persons.Missing.XM") is None
    assert read_path(record, None) is record


def test_legacy_codes_become_enums() -> None:
    fmap = FieldMap(value="XB", codes={"1": "MALE", "2": "FEMALE"})
    assert read_field("ps", "gender", PERSON["gender"], fmap, [{"XB": 2}]) is Gender.FEMALE
    assert read_field("ps", "gender", PERSON["gender"], fmap, []) is None


def test_unknown_code_is_bad_source_data_naming_source_field_and_path_never_the_value() -> None:
    fmap = FieldMap(value="MarriageStatus", codes={"10": "SINGLE"})
    with pytest.raises(BadSourceData) as info:
        read_field("civil_affairs", "maritalStatus", PERSON["maritalStatus"], fmap, [{"MarriageStatus": "97"}])
    assert info.value.source == "civil_affairs"
    assert "maritalStatus" in str(info.value)
    assert "MarriageStatus" in str(info.value)
    assert "97" not in str(info.value)
    assert info.value.__cause__ is None


def test_a_malformed_value_is_named_by_path_and_type_never_quoted() -> None:
    record = {"CSRQ": "1101051949123"}
    with pytest.raises(BadSourceData) as info:
        read_field("ps", "birthDate", PERSON["birthDate"], FieldMap(value="CSRQ", date_format="%Y%m%d"), [record])
    assert "CSRQ" in str(info.value)
    assert "a text of 13 characters" in str(info.value)
    assert "1101051949123" not in str(info.value)


def test_absent_records_read_as_the_declared_value() -> None:
    fmap = FieldMap(value="insured", absent=False)
    spec = PERSON["socialInsurance"].fields["insured"]  # type: ignore[index]
    assert read_field("x", "insured", spec, fmap, []) is False
    assert read_field("x", "insured", spec, fmap, [{"insured": "1"}]) is True
    gender = FieldMap(value="XB", codes={"1": "MALE"}, absent="FEMALE")
    assert read_field("x", "gender", PERSON["gender"], gender, []) is Gender.FEMALE


def test_enum_names_are_accepted_without_codes() -> None:
    fmap = FieldMap(value="status")
    assert read_field("x", "maritalStatus", PERSON["maritalStatus"], fmap, [{"status": "married"}]) is (
        MaritalStatus.MARRIED
    )


def test_dates_with_formats_iso_and_native() -> None:
    spec = PERSON["birthDate"]
    assert read_field("x", "birthDate", spec, FieldMap(value="d", date_format="%Y%m%d"), [{"d": "19491231"}]) == (
        dt.date(1949, 12, 31)
    )
    assert read_field("x", "birthDate", spec, FieldMap(value="d"), [{"d": "1949-12-31"}]) == dt.date(1949, 12, 31)
    assert read_field("x", "birthDate", spec, FieldMap(value="d"), [{"d": dt.date(1949, 12, 31)}]) == (
        dt.date(1949, 12, 31)
    )
    with pytest.raises(BadSourceData, match="not a Date"):
        read_field("x", "birthDate", spec, FieldMap(value="d", date_format="%Y%m%d"), [{"d": "1949-13-45"}])


def test_naive_department_datetimes_are_china_standard_time() -> None:
    value = read_field("x", "submittedAt", CASE["submittedAt"], FieldMap(value="t"), [{"t": "2026-11-20 09:30:00"}])
    assert value == dt.datetime(2026, 11, 20, 9, 30, tzinfo=CHINA_STANDARD_TIME)


def test_decimals_stay_exact() -> None:
    spec = ENTITY["registeredCapital"]
    assert read_field("x", "c", spec, FieldMap(value="c"), [{"c": "5000000.10"}]) == Decimal("5000000.10")
    assert read_field("x", "c", spec, FieldMap(value="c"), [{"c": Decimal("0.10")}]) == Decimal("0.10")


def test_objects_and_boolean_codes() -> None:
    fmap = FieldMap(
        fields={
            "insured": FieldMap(value="flag", codes={"1": "true", "0": "false"}),
            "contributionMonths": FieldMap(value="months"),
        }
    )
    value = read_field("hrss", "socialInsurance", PERSON["socialInsurance"], fmap, [{"flag": "0", "months": "7"}])
    assert value == {"insured": False, "contributionMonths": 7}


def test_lists_from_many_records_and_from_a_nested_list() -> None:
    fields = {"degree": FieldMap(value="XLMC"), "school": FieldMap(value="YXMC")}
    rows = [{"XLMC": "学士", "YXMC": "北京大学"}, {"XLMC": "硕士", "YXMC": "清华大学"}]
    from_rows = read_field("edu", "degrees", PERSON["degrees"], FieldMap(fields=fields), rows, many_query=True)
    nested = read_field(
        "edu", "degrees", PERSON["degrees"], FieldMap(value="Degrees", fields=fields), [{"Degrees": rows}]
    )
    assert from_rows == nested == [{"degree": "学士", "school": "北京大学"}, {"degree": "硕士", "school": "清华大学"}]


def test_references_and_applicant_kinds() -> None:
    cases = read_field(
        "ap", "cases", PERSON["cases"], FieldMap(value="BJBH"), [{"BJBH": "A1"}, {"BJBH": "A2"}], many_query=True
    )
    assert cases == [EntityKey("Case", "A1"), EntityKey("Case", "A2")]
    applicant = FieldMap(value="SQR", kind=FieldMap(value="LX", codes={"1": "PERSON", "2": "LEGAL_ENTITY"}))
    assert read_field("ap", "applicant", CASE["applicant"], applicant, [{"SQR": "91110000600037341L", "LX": "2"}]) == (
        EntityKey("LegalEntity", "91110000600037341L")
    )
    with pytest.raises(BadSourceData, match="Applicant kind"):
        read_field("ap", "applicant", CASE["applicant"], applicant, [{"SQR": "x", "LX": "9"}])


def test_paths_match_columns_a_database_folded_to_lower_case() -> None:
    assert read_path({"xm": "王秀英"}, "XM") == "王秀英"
    assert read_path({"XM": "a", "xm": "b"}, "xm") == "b"
