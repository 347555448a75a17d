"""The housing fund centre onboarded by housing_fund.yaml alone, read through GraphQL raw and unified.

These tests are written against the open model's specification (``model:``, ``raw``, ``probe``,
``not_found_faults``); they pass once those features are in the gateway.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.onboarding.conftest import (
    Onboard,
    assert_no_id_number_in_errors,
    bureau_without_agreement,
    codes,
)
from tests.onboarding.holdings import BORN_1880, NOBODY, Holdings

SOURCE = "housing_fund"
QUERY = "account"
DEPARTMENT = "住房公积金管理中心 (Housing Provident Fund Centre)"
STATUSES = {"0": "NORMAL", "1": "SEALED", "9": "CLOSED"}
UNIFIED = "housingFund { accountNumber balance monthlyDeposit status openedOn }"
RAW = "raw { housingFund { account { GRZH XM ZJHM ZHYE YJCE ZHZT KHRQ } } }"
PROVENANCE = "provenance { field source department masked }"


async def test_raw_and_unified_fields_are_what_the_centre_holds(
    onboard: Onboard, housing_fund_variables: dict[str, str], holdings: Holdings
) -> None:
    gateway = await onboard("housing_fund.yaml", housing_fund_variables)
    body = await gateway.person(f"{UNIFIED} {RAW} {PROVENANCE}")
    assert "errors" not in body, body["errors"]
    person = body["data"]["person"]
    held = holdings.accounts[gateway.applicant]

    raw = person["raw"]["housingFund"]["account"]
    assert raw == {
        "GRZH": held.account_number,
        "XM": held.name,
        "ZJHM": held.id_number,
        "ZHYE": str(held.balance),
        "YJCE": str(held.monthly_deposit),
        "ZHZT": held.status,
        "KHRQ": held.opened.isoformat(),
    }
    assert Decimal(raw["ZHYE"]) == Decimal("86532.17")

    fund = person["housingFund"]
    assert fund == {
        "accountNumber": held.account_number,
        "balance": "86532.17",
        "monthlyDeposit": "2150.00",
        "status": STATUSES[held.status],
        "openedOn": "2003-07-01",
    }
    assert Decimal(fund["balance"]) == held.balance
    assert dt.date.fromisoformat(fund["openedOn"]) == held.opened

    provenance = {p["field"]: p for p in person["provenance"]}
    assert (provenance["housingFund"]["source"], provenance["housingFund"]["department"]) == (SOURCE, DEPARTMENT)


async def test_the_raw_namespace_is_typed_from_the_wsdl(
    onboard: Onboard, housing_fund_variables: dict[str, str]
) -> None:
    gateway = await onboard("housing_fund.yaml", housing_fund_variables)
    body = await gateway.query(
        '{ __type(name: "HousingFundStatus") { enumValues { name } } '
        'fund: __type(name: "HousingFund") { fields { name type { name kind ofType { name } } } } }'
    )
    assert {v["name"] for v in body["data"]["__type"]["enumValues"]} == {"NORMAL", "SEALED", "CLOSED"}
    fields = {f["name"]: f["type"]["name"] or f["type"]["ofType"]["name"] for f in body["data"]["fund"]["fields"]}
    assert fields["balance"] == "Decimal"
    assert fields["status"] == "HousingFundStatus"
    assert fields["openedOn"] == "Date"


async def test_a_bureau_without_an_agreement_is_refused_raw_and_unified(
    onboard: Onboard, housing_fund_variables: dict[str, str]
) -> None:
    probe = await onboard("housing_fund.yaml", housing_fund_variables)
    source = probe.config.sources[SOURCE]
    outsider = bureau_without_agreement(probe.demo, {*source.agreements, source.owner or ""})
    gateway = await onboard("housing_fund.yaml", housing_fund_variables, clerk_department=outsider)
    body = await gateway.person(f"{UNIFIED} {RAW}")
    person = body["data"]["person"]
    assert person["housingFund"] is None
    assert person["raw"]["housingFund"]["account"] is None
    found = codes(body)
    assert found["person.housingFund"] == ("FORBIDDEN", "NO_SHARING_AGREEMENT")
    assert ("FORBIDDEN", "NO_SHARING_AGREEMENT") in {v for k, v in found.items() if k.startswith("person.raw")}
    assert_no_id_number_in_errors(body, gateway.applicant)


async def test_no_purpose_no_fields(onboard: Onboard, housing_fund_variables: dict[str, str]) -> None:
    gateway = await onboard("housing_fund.yaml", housing_fund_variables)
    body = await gateway.person(f"{UNIFIED} {RAW}", purpose=False)
    person = body["data"]["person"]
    assert person["housingFund"] is None
    found = codes(body)
    assert found["person.housingFund"] == ("FORBIDDEN", "PURPOSE_REQUIRED")
    assert ("FORBIDDEN", "PURPOSE_REQUIRED") in {v for k, v in found.items() if k.startswith("person.raw")}
    assert_no_id_number_in_errors(body, gateway.applicant)


async def test_disclosures_are_audited_with_the_source_named(
    onboard: Onboard, housing_fund_variables: dict[str, str]
) -> None:
    gateway = await onboard("housing_fund.yaml", housing_fund_variables)
    await gateway.person(UNIFIED)
    await gateway.person(RAW)
    unified, raw = await gateway.audit()
    assert "housingFund" in unified.released
    assert SOURCE in unified.sources
    assert unified.purpose == gateway.purpose
    assert f"raw.{SOURCE}.{QUERY}" in raw.released
    assert SOURCE in raw.sources


@pytest.mark.parametrize("stranger", [NOBODY, BORN_1880])
async def test_id_numbers_never_appear_in_error_messages(
    onboard: Onboard, housing_fund_variables: dict[str, str], stranger: str
) -> None:
    gateway = await onboard("housing_fund.yaml", housing_fund_variables)
    # Someone the purpose case is not about (NOBODY), and a birth date the gateway refuses (1880).
    body = await gateway.person(f"{UNIFIED} {RAW}", id_number=stranger)
    assert body.get("errors"), body
    assert not (body.get("data") or {}).get("person", {}) or body["data"]["person"]["housingFund"] is None
    assert_no_id_number_in_errors(body, stranger, gateway.applicant)
