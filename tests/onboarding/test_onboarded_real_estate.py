"""The real-estate registry onboarded by real_estate.yaml alone, read through GraphQL raw and unified.

Written against the open model's specification (``model:``, ``raw``, ``status``, ``paging``,
``auth_method: client_secret_post``); these pass once those features are in the gateway.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from auth.config import Mask
from auth.masking import mask_value
from tests.onboarding.conftest import Onboard, assert_no_id_number_in_errors, bureau_without_agreement, codes
from tests.onboarding.holdings import Holdings
from tests.onboarding.real_estate_service import RealEstateRegistry, certificate_record

SOURCE = "real_estate"
QUERY = "certificates"
DEPARTMENT = "不动产登记中心 (Real Estate Registration Centre)"
UNIFIED = "realEstate { certificateNumber address area price registeredAt }"
RAW = "raw { realEstate { certificates { BDCQZH QLR ZJHM ZL MJ JYJG DJSJ } } }"
PROVENANCE = "provenance { field source department masked }"


async def test_raw_records_come_from_every_page_as_the_registry_wrote_them(
    onboard: Onboard,
    real_estate_variables: dict[str, str],
    real_estate: tuple[RealEstateRegistry, str],
    holdings: Holdings,
) -> None:
    registry, _ = real_estate
    gateway = await onboard("real_estate.yaml", real_estate_variables)
    body = await gateway.person(RAW)
    assert "errors" not in body, body["errors"]
    held = holdings.certificates_of(gateway.applicant)
    assert len(held) == 3  # two pages of two
    assert body["data"]["person"]["raw"]["realEstate"]["certificates"] == [certificate_record(c) for c in held]
    pages = [(q["page"], q["size"]) for q in registry.queries if q.get("zjhm") == gateway.applicant]
    assert pages == [("1", "2"), ("2", "2")]


async def test_unified_certificates_are_a_relation_with_exact_decimals(
    onboard: Onboard, real_estate_variables: dict[str, str], holdings: Holdings
) -> None:
    gateway = await onboard("real_estate.yaml", real_estate_variables)
    body = await gateway.person(f"{UNIFIED} {PROVENANCE}")
    assert "errors" not in body, body["errors"]
    person = body["data"]["person"]
    held = holdings.certificates_of(gateway.applicant)
    certificates = person["realEstate"]
    assert [c["certificateNumber"] for c in certificates] == [c.number for c in held]
    for answered, certificate in zip(certificates, held, strict=True):
        assert Decimal(answered["area"]) == certificate.area
        assert Decimal(answered["price"]) == certificate.price
        assert answered["area"] == f"{certificate.area:.2f}"
        registered = dt.datetime.fromisoformat(answered["registeredAt"])
        assert registered.replace(tzinfo=None) == certificate.registered_at
    assert certificates[0]["price"] == "1250000.00"
    provenance = {p["field"]: p for p in person["provenance"]}
    assert (provenance["realEstate"]["source"], provenance["realEstate"]["department"]) == (SOURCE, DEPARTMENT)


async def test_the_address_is_masked_for_a_clerk_without_the_reveal_role(
    onboard: Onboard, real_estate_variables: dict[str, str], holdings: Holdings
) -> None:
    # real_estate.yaml masks RealEstateCertificate.address unless the caller is a supervisor; the demo clerk is a
    # case_handler.
    gateway = await onboard("real_estate.yaml", real_estate_variables)
    body = await gateway.person("realEstate { certificateNumber address }")
    held = holdings.certificates_of(gateway.applicant)
    addresses = [c["address"] for c in body["data"]["person"]["realEstate"]]
    assert addresses == [mask_value(Mask.ADDRESS, c.address) for c in held]
    assert addresses[0] == "北京市朝阳区****"
    assert all(c.address not in addresses for c in held)


async def test_an_expired_token_is_refreshed(
    onboard: Onboard, real_estate_variables: dict[str, str], real_estate: tuple[RealEstateRegistry, str]
) -> None:
    registry, _ = real_estate
    gateway = await onboard("real_estate.yaml", real_estate_variables)
    first = await gateway.person(RAW)
    assert "errors" not in first, first["errors"]
    issued = registry.tokens_issued
    registry.clock.advance(registry.token_lifetime + 1)  # type: ignore[attr-defined]
    second = await gateway.person(RAW)
    assert "errors" not in second, second["errors"]
    assert second["data"] == first["data"]
    assert registry.tokens_issued > issued  # a fresh token after the first one expired (4010 or by expires_in)


async def test_refused_tokens_are_the_sources_credentials_error_with_the_departments_code(
    onboard: Onboard, real_estate_variables: dict[str, str], real_estate: tuple[RealEstateRegistry, str]
) -> None:
    registry, _ = real_estate
    registry.token_lifetime = 0  # every token it issues is refused: 4010 in a 200 body
    gateway = await onboard("real_estate.yaml", real_estate_variables)
    body = await gateway.person(f"{UNIFIED} {RAW}")
    assert body["data"]["person"]["realEstate"] is None
    errors = [e for e in body["errors"] if e["path"][:2] == ["person", "realEstate"]]
    assert errors, body["errors"]
    extensions = errors[0]["extensions"]
    assert (extensions["code"], extensions["source"], extensions["departmentCode"]) == (
        "SOURCE_CREDENTIALS_REFUSED",
        SOURCE,
        "4010",
    )
    assert registry.tokens_issued >= 2  # it tried a fresh token before giving up
    assert_no_id_number_in_errors(body, gateway.applicant)


async def test_a_wrong_client_secret_is_refused_and_says_nothing_of_the_applicant(
    onboard: Onboard, real_estate_variables: dict[str, str], real_estate: tuple[RealEstateRegistry, str]
) -> None:
    registry, _ = real_estate
    gateway = await onboard("real_estate.yaml", real_estate_variables | {"BDC_CLIENT_SECRET": "not-the-secret"})
    body = await gateway.person(UNIFIED)
    assert body["data"]["person"]["realEstate"] is None
    assert codes(body)["person.realEstate"][0] == "SOURCE_CREDENTIALS_REFUSED"
    assert registry.tokens_issued == 0
    assert "not-the-secret" not in str(body)
    assert_no_id_number_in_errors(body, gateway.applicant)


async def test_a_bureau_without_an_agreement_and_no_purpose_are_refused_before_the_registry_is_asked(
    onboard: Onboard, real_estate_variables: dict[str, str], real_estate: tuple[RealEstateRegistry, str]
) -> None:
    registry, _ = real_estate
    probe = await onboard("real_estate.yaml", real_estate_variables)
    source = probe.config.sources[SOURCE]
    outsider = bureau_without_agreement(probe.demo, {*source.agreements, source.owner or ""})
    gateway = await onboard("real_estate.yaml", real_estate_variables, clerk_department=outsider)
    registry.queries.clear()

    refused = await gateway.person(f"{UNIFIED} {RAW}")
    assert refused["data"]["person"]["realEstate"] is None
    assert codes(refused)["person.realEstate"] == ("FORBIDDEN", "NO_SHARING_AGREEMENT")
    assert ("FORBIDDEN", "NO_SHARING_AGREEMENT") in {v for k, v in codes(refused).items() if k.startswith("person.raw")}

    no_purpose = await probe.person(f"{UNIFIED} {RAW}", purpose=False)
    assert no_purpose["data"]["person"]["realEstate"] is None
    assert codes(no_purpose)["person.realEstate"] == ("FORBIDDEN", "PURPOSE_REQUIRED")
    assert registry.queries == []
    for body in (refused, no_purpose):
        assert_no_id_number_in_errors(body, gateway.applicant)


async def test_disclosures_are_audited_with_the_source_named(
    onboard: Onboard, real_estate_variables: dict[str, str]
) -> None:
    gateway = await onboard("real_estate.yaml", real_estate_variables)
    await gateway.person("realEstate { certificateNumber area }")
    await gateway.person(RAW)
    unified, raw = await gateway.audit()
    assert "realEstate" in unified.released
    assert SOURCE in unified.sources
    assert f"raw.{SOURCE}.{QUERY}" in raw.released
    assert SOURCE in raw.sources
    assert raw.purpose == gateway.purpose
