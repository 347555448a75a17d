"""Fixtures for the onboarding tests: the three test departments seeded with the demo's sample person, and the
demo gateway with one of their YAML files laid over ``demo/onewindow.yaml``.

    async def test_something(onboard: Onboard, housing_fund_variables: dict[str, str]) -> None:
        gateway = await onboard("housing_fund.yaml", housing_fund_variables)
        body = await gateway.person("housingFund { balance }")

A request without credentials acts as the demo's development principal, a 民政局 ``case_handler`` clerk whose
purpose is :attr:`Onboarded.purpose` (the sample person's case at that bureau); ``clerk_department`` makes the
principal a clerk of another bureau, with a case of the sample person handled there as purpose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from auth.audit.query import AuditRecord
from demo.departments import DemoDepartments
from gateway.serving import serve_asgi
from tests.demo_gateway import ServedGateway, demo_gateways
from tests.onboarding.allowance_table import AllowanceTable, allowance_table
from tests.onboarding.holdings import Holdings
from tests.onboarding.housing_fund_service import (
    SPYNE_SKIP_REASON,
    HousingFundService,
    housing_fund_service,
    spyne_available,
)
from tests.onboarding.real_estate_service import RealEstateRegistry

HERE = Path(__file__).parent


@dataclass
class Onboarded(ServedGateway):
    """The gateway over the demo departments and one onboarded department, served on loopback."""

    demo: DemoDepartments
    purpose: str

    @property
    def applicant(self) -> str:
        return self.demo.dataset.sample_person.id_number

    async def person(self, selection: str, *, id_number: str | None = None, purpose: bool = True) -> dict[str, Any]:
        """``person`` for the sample person (or ``id_number``) with the purpose case, or without one."""
        return await self.ask_person(id_number or self.applicant, selection, case=self.purpose if purpose else None)

    async def audit(self) -> list[AuditRecord]:
        """The disclosures recorded for the sample person, oldest first."""
        return await self.audit_of(self.applicant)


Onboard = Callable[..., Awaitable[Onboarded]]


def codes(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Each error's (code, reason) by the path it is at, joined with dots (``person.housingFund``)."""
    return {
        ".".join(str(p) for p in e.get("path") or ()): (e["extensions"]["code"], e["extensions"].get("reason"))
        for e in body.get("errors", [])
    }


def assert_no_id_number_in_errors(body: dict[str, Any], *id_numbers: str) -> None:
    for error in body.get("errors", []):
        for id_number in id_numbers:
            assert id_number not in error["message"], error
            assert id_number not in str(error.get("extensions", {})), error


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path / "demo") as departments:
        yield departments


@pytest.fixture
def holdings(demo: DemoDepartments) -> Holdings:
    sample = demo.dataset.sample_person
    return Holdings.seeded(sample.id_number, sample.name)


@pytest.fixture
def housing_fund(holdings: Holdings) -> Iterator[HousingFundService]:
    if not spyne_available():
        pytest.skip(SPYNE_SKIP_REASON)
    with housing_fund_service(holdings.accounts.values()) as service:
        yield service


@pytest.fixture
def housing_fund_variables(
    housing_fund: HousingFundService, holdings: Holdings, demo: DemoDepartments
) -> dict[str, str]:
    return {
        "GJJ_WSDL": housing_fund.wsdl,
        "GJJ_USER": housing_fund.username,
        "GJJ_PASSWORD": housing_fund.password,
        "GJJ_PROBE_KEY": demo.dataset.sample_person.id_number,
    }


@pytest.fixture
async def real_estate(holdings: Holdings) -> AsyncIterator[tuple[RealEstateRegistry, str]]:
    registry = RealEstateRegistry(holdings)
    async with serve_asgi(registry.app()) as url:
        yield registry, url


@pytest.fixture
def real_estate_variables(real_estate: tuple[RealEstateRegistry, str], demo: DemoDepartments) -> dict[str, str]:
    registry, url = real_estate
    return {
        "BDC_URL": url,
        "BDC_TOKEN_URL": f"{url}/oauth/token",
        "BDC_CLIENT_ID": registry.client_id,
        "BDC_CLIENT_SECRET": registry.client_secret,
        "BDC_PROBE_KEY": demo.dataset.sample_person.id_number,
    }


@pytest.fixture
async def allowance(postgres_url: str, holdings: Holdings) -> AsyncIterator[AllowanceTable]:
    async with allowance_table(postgres_url, holdings.allowances) as table:
        yield table


@pytest.fixture
def allowance_variables(allowance: AllowanceTable) -> dict[str, str]:
    return {"DB_URL": allowance.url, "DB_SCHEMA": allowance.schema}


def _purpose_at(demo: DemoDepartments, department: str) -> str:
    dataset = demo.dataset
    return next(
        c.case_number
        for c in dataset.cases_by_applicant[dataset.sample_person.id_number]
        if dataset.service_items_by_code[c.service_item].department == department
    )


def bureau_without_agreement(demo: DemoDepartments, config_agreements: set[str]) -> str:
    """A bureau (neither owner nor party to an agreement) that handles one of the sample person's cases."""
    dataset = demo.dataset
    return next(
        department
        for c in dataset.cases_by_applicant[dataset.sample_person.id_number]
        if (department := dataset.service_items_by_code[c.service_item].department) not in config_agreements
    )


@pytest.fixture
async def onboard(demo: DemoDepartments, tmp_path: Path) -> AsyncIterator[Onboard]:
    """Start a gateway: the demo configuration with ``tests/onboarding/<yaml_name>`` laid over it."""
    async with demo_gateways(demo.variables, tmp_path) as serve:

        async def start(
            yaml_name: str, variables: dict[str, str], *, clerk_department: str = "民政局", cache: bool = False
        ) -> Onboarded:
            url, config = await serve(clerk_department, overlays=[HERE / yaml_name], variables=variables, cache=cache)
            purpose = (
                demo.dataset.sample_purpose.case_number
                if clerk_department == "民政局"
                else _purpose_at(demo, clerk_department)
            )
            return Onboarded(url, config, demo, purpose)

        yield start
