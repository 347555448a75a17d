"""The policy as data: sharing classes, agreements, owners, purposes, citizens' own data, masks, explanations."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth.config import Mask
from auth.policy import Policy, Reason
from auth.principal import Principal, PrincipalKind
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from tests.demo_config import demo_yaml

VARIABLES = {
    "DEMO_PUBLIC_SECURITY_WSDL": "http://127.0.0.1:1/household?wsdl",
    "DEMO_CIVIL_AFFAIRS_WSDL": "http://127.0.0.1:1/marriage?wsdl",
    "DEMO_HRSS_URL": "http://127.0.0.1:1",
    "DEMO_MARKET_URL": "http://127.0.0.1:1",
    "DEMO_LICENCES_URL": "http://127.0.0.1:1",
    "DEMO_EDUCATION_DB_URL": "sqlite+aiosqlite:///education.db",
    "DEMO_APPROVAL_DB_URL": "sqlite+aiosqlite:///approval.db",
}


def _config(tmp_path: Path, **options: object) -> GatewayConfig:
    return load_config(demo_yaml(tmp_path, open_policy=False, **options), variables=VARIABLES)  # type: ignore[arg-type]


def _clerk(department: str | None = "民政局", *roles: str) -> Principal:
    return Principal("wang.fang", PrincipalKind.CLERK, "oidc:province", department=department, roles=frozenset(roles))


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy(_config(tmp_path))


def test_unconditional_field_needs_only_a_purpose_for_a_clerk(policy: Policy) -> None:
    verdict = policy.field(_clerk(), "Person", "name", own=False)
    assert verdict.allowed
    assert verdict.needs_purpose
    assert verdict.sources == ("public_security",)


def test_conditional_field_goes_only_to_departments_with_an_agreement(policy: Policy) -> None:
    assert policy.field(_clerk("人力资源和社会保障局"), "Person", "maritalStatus", own=False).allowed
    refused = policy.field(_clerk("交通运输局"), "Person", "maritalStatus", own=False)
    assert not refused.allowed
    assert refused.reason is Reason.NO_SHARING_AGREEMENT
    assert "交通运输局" in refused.detail


def test_owner_reads_its_conditional_field_without_an_agreement(policy: Policy) -> None:
    assert policy.field(_clerk("民政局"), "Person", "maritalStatus", own=False).allowed


def test_not_shared_field_goes_only_to_the_owner(policy: Policy) -> None:
    assert policy.field(_clerk("公安局"), "Person", "ethnicity", own=False).allowed
    refused = policy.field(_clerk("民政局"), "Person", "ethnicity", own=False)
    assert refused.reason is Reason.NOT_SHARED


def test_service_principal_needs_a_purpose_only_for_conditional_fields(policy: Policy) -> None:
    service = Principal(
        "window-app", PrincipalKind.SERVICE, "api_key", department="民政局", scopes=frozenset({"read:*"})
    )
    assert not policy.field(service, "Person", "name", own=False).needs_purpose
    assert policy.field(service, "Person", "maritalStatus", own=False).needs_purpose


def test_citizen_reads_own_record_whole_and_nobody_elses(policy: Policy) -> None:
    citizen = Principal("u1", PrincipalKind.CITIZEN, "cas", id_number="11010519491231002X")
    own = policy.field(citizen, "Person", "ethnicity", own=True)
    assert own.allowed
    assert not own.needs_purpose
    assert own.mask is None
    other = policy.field(citizen, "Person", "name", own=False)
    assert other.reason is Reason.NOT_OWN_DATA


def test_api_key_without_the_entity_scope_is_refused(policy: Policy) -> None:
    integrator = Principal("partner", PrincipalKind.INTEGRATOR, "api_key", scopes=frozenset({"read:LegalEntity"}))
    assert policy.field(integrator, "LegalEntity", "name", own=False).allowed
    assert policy.field(integrator, "Person", "name", own=False).reason is Reason.SCOPE_MISSING


def test_masks_apply_unless_the_role_reveals(policy: Policy) -> None:
    assert policy.field(_clerk("民政局"), "Person", "phone", own=False).mask is Mask.PHONE
    assert policy.field(_clerk("民政局", "case_handler"), "Person", "phone", own=False).mask is None


def test_explain_names_each_rule_and_the_outcome(policy: Policy) -> None:
    lines = policy.explain(_clerk("交通运输局"), "Person", "maritalStatus")
    text = "\n".join(lines)
    assert "civil_affairs: sharing conditional, owner 民政局" in text
    assert "-> NO_SHARING_AGREEMENT" in text
    assert lines[-1].startswith("REFUSED NO_SHARING_AGREEMENT")
    released = policy.explain(_clerk("民政局"), "Person", "phone")
    assert released[-1].startswith("RELEASED")
    assert "masked as phone" in released[-1]


def test_not_shared_without_an_owner_fails_at_start_up(tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        data["sources"]["education"]["provides"]["Person.degrees"]["sharing"] = "not_shared"  # type: ignore[index]

    with pytest.raises(ConfigError) as info:
        Policy(_config(tmp_path, edit=edit))
    assert info.value.path == "sources.education.provides.Person.degrees.sharing"


def test_a_mask_on_an_unknown_field_fails_at_start_up(tmp_path: Path) -> None:
    def edit(data: dict[str, object]) -> None:
        data["auth"]["policy"]["masking"]["Person.mobile"] = {"mask": "phone"}  # type: ignore[index]

    with pytest.raises(ConfigError) as info:
        Policy(_config(tmp_path, edit=edit))
    assert info.value.path == "auth.policy.masking.Person.mobile"
