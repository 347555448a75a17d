"""The minimum living allowance register onboarded by allowance.yaml alone, read through GraphQL raw and unified.

Written against the open model's specification (``model:``, ``raw``, ``where`` operators, ``absent``); these pass
once those features are in the gateway.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.engine import make_url

from demo.departments import DemoDepartments
from tests.gateway.faults import Fault, FaultProxy
from tests.onboarding.allowance_table import allowance_table
from tests.onboarding.conftest import Onboard, assert_no_id_number_in_errors, bureau_without_agreement, codes
from tests.onboarding.holdings import Holdings

pytestmark = pytest.mark.postgres

SOURCE = "allowance"
QUERY = "active"
DEPARTMENT = "民政局社会救助系统 (Civil Affairs Bureau, social assistance)"
RAW = "raw { allowance { active { SFZHM XM JZJE KSRQ ZT } } }"


async def test_raw_row_is_the_active_one_and_the_unified_field_says_so(
    onboard: Onboard, allowance_variables: dict[str, str], holdings: Holdings
) -> None:
    gateway = await onboard("allowance.yaml", allowance_variables)
    body = await gateway.person(f"receivesAllowance {RAW} provenance {{ field source department }}")
    assert "errors" not in body, body["errors"]
    person = body["data"]["person"]
    active = holdings.active_allowance(gateway.applicant)
    assert active is not None
    row = person["raw"]["allowance"]["active"]
    assert row == {
        "SFZHM": gateway.applicant,
        "XM": active.name,
        "JZJE": "1450.50",
        "KSRQ": "20230101",
        "ZT": "1",
    }
    assert Decimal(row["JZJE"]) == active.amount
    assert person["receivesAllowance"] is True
    provenance = {p["field"]: p for p in person["provenance"]}
    assert (provenance["receivesAllowance"]["source"], provenance["receivesAllowance"]["department"]) == (
        SOURCE,
        DEPARTMENT,
    )


async def test_no_purpose_and_a_bureau_without_an_agreement_are_refused(
    onboard: Onboard, allowance_variables: dict[str, str]
) -> None:
    gateway = await onboard("allowance.yaml", allowance_variables)
    no_purpose = await gateway.person(f"receivesAllowance {RAW}", purpose=False)
    assert no_purpose["data"]["person"]["receivesAllowance"] is None
    assert codes(no_purpose)["person.receivesAllowance"] == ("FORBIDDEN", "PURPOSE_REQUIRED")

    source = gateway.config.sources[SOURCE]
    outsider = bureau_without_agreement(gateway.demo, {*source.agreements, source.owner or ""})
    other = await onboard("allowance.yaml", allowance_variables, clerk_department=outsider)
    refused = await other.person(f"receivesAllowance {RAW}")
    assert refused["data"]["person"]["receivesAllowance"] is None
    assert codes(refused)["person.receivesAllowance"] == ("FORBIDDEN", "NO_SHARING_AGREEMENT")
    assert ("FORBIDDEN", "NO_SHARING_AGREEMENT") in {v for k, v in codes(refused).items() if k.startswith("person.raw")}
    for body in (no_purpose, refused):
        assert_no_id_number_in_errors(body, gateway.applicant)


async def test_disclosures_are_audited_with_the_source_named(
    onboard: Onboard, allowance_variables: dict[str, str]
) -> None:
    gateway = await onboard("allowance.yaml", allowance_variables)
    await gateway.person("receivesAllowance")
    await gateway.person(RAW)
    unified, raw = await gateway.audit()
    assert "receivesAllowance" in unified.released
    assert SOURCE in unified.sources
    assert f"raw.{SOURCE}.{QUERY}" in raw.released
    assert SOURCE in raw.sources


async def test_no_active_row_means_false_not_null(
    onboard: Onboard, postgres_url: str, holdings: Holdings, demo: DemoDepartments
) -> None:
    sample = demo.dataset.sample_person.id_number
    withdrawn_only = [a for a in holdings.allowances if a.id_number != sample or a.status == "9"]
    async with allowance_table(postgres_url, withdrawn_only) as table:
        gateway = await onboard("allowance.yaml", {"DB_URL": table.url, "DB_SCHEMA": table.schema})
        body = await gateway.person(f"receivesAllowance {RAW}")
    assert "errors" not in body, body["errors"]
    assert body["data"]["person"]["receivesAllowance"] is False  # absent: false
    assert body["data"]["person"]["raw"]["allowance"]["active"] is None  # the withdrawn row is not active


async def test_a_department_down_fails_its_fields_only_and_a_cached_answer_stands(
    onboard: Onboard, allowance_variables: dict[str, str]
) -> None:
    url = make_url(allowance_variables["DB_URL"])
    async with FaultProxy(url.port or 5432) as proxy:
        proxied = {**allowance_variables, "DB_URL": url.set(port=proxy.port).render_as_string(hide_password=False)}
        cached = await onboard("allowance.yaml", proxied, cache=True)
        uncached = await onboard("allowance.yaml", proxied)
        assert (await cached.person("receivesAllowance"))["data"]["person"]["receivesAllowance"] is True
        proxy.mode = Fault.STALL
        # Without a cache: the register's field fails with a typed error naming it; the household registry's stands.
        body = await uncached.person("name receivesAllowance")
        assert body["data"]["person"]["name"]
        assert body["data"]["person"]["receivesAllowance"] is None
        found = codes(body)
        assert found["person.receivesAllowance"][0] in ("SOURCE_TIMEOUT", "SOURCE_UNAVAILABLE")
        assert set(found) == {"person.receivesAllowance"}
        assert [e["extensions"]["source"] for e in body["errors"]] == [SOURCE]
        # With the cache, the answer read before the fault is served, as for a built-in field.
        body = await cached.person("receivesAllowance provenance { field source }")
        assert "errors" not in body, body["errors"]
        assert body["data"]["person"]["receivesAllowance"] is True
        proxy.mode = Fault.FORWARD
