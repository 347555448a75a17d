"""Two cities, each a OneWindow gateway over some of the demo departments, for the federation tests.

City A holds the household registry and social security, city B the degree registry and the marriage registry; both
run an approval platform (each city checks a purpose against the cases it handles). Both use the demo's own policy:
the development principal is a ``case_handler`` clerk of 民政局, and a person's fields need a purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.departments import APPROVAL, CIVIL_AFFAIRS, EDUCATION, HRSS, PUBLIC_SECURITY
from demo.model import Dataset, Person
from demo.variants import demo_yaml

__all__ = ["AUDIENCE", "CITY_A", "CITY_B", "CLERK_DEPARTMENT", "City", "applicant_of_both", "married_applicant"]

CLERK_DEPARTMENT = "民政局"
AUDIENCE = "onewindow"


@dataclass(frozen=True)
class City:
    name: str
    sources: tuple[str, ...]

    def config_file(self, directory: Path, *, issuer: str | None = None) -> Path:
        """The demo configuration with only this city's sources, written into ``directory``. With ``issuer``, the
        city trusts that OIDC issuer (audience ``onewindow``) and its API keys, and nobody else: no development
        principal."""

        def keep_own(data: dict[str, Any]) -> None:
            data["sources"] = {name: src for name, src in data["sources"].items() if name in self.sources}
            if issuer is not None:
                del data["auth"]["development_principal"]
                data["auth"]["issuers"] = {"province": {"issuer": issuer, "audience": [AUDIENCE]}}

        return demo_yaml(directory, open_policy=False, edit=keep_own, name=f"{self.name}.yaml")

    def variables(self, demo_variables: Mapping[str, str], directory: Path) -> dict[str, str]:
        """The demo departments' addresses, and this city's own audit chain and key store; no cache, so that every
        read reaches the department."""
        return {
            **demo_variables,
            "DEMO_AUDIT_URL": f"sqlite+aiosqlite:///{directory / f'{self.name}-audit.db'}",
            "DEMO_KEYS_URL": f"sqlite+aiosqlite:///{directory / f'{self.name}-keys.db'}",
            "DEMO_CACHE": "false",
            "DEMO_CLERK_DEPARTMENT": CLERK_DEPARTMENT,
        }


CITY_A = City("city-a", (PUBLIC_SECURITY, HRSS, APPROVAL))
CITY_B = City("city-b", (EDUCATION, CIVIL_AFFAIRS, APPROVAL))


def applicant_of_both(dataset: Dataset) -> tuple[Person, str]:
    """A person both cities hold something of (social insurance in A, degrees in B), with a case handled by the
    clerk's department: the purpose."""
    for person in dataset.persons:
        if person.social_insurance is None or not person.degrees:
            continue
        for case in dataset.cases_by_applicant.get(person.id_number, ()):
            if dataset.service_items_by_code[case.service_item].department == CLERK_DEPARTMENT:
                return person, case.case_number
    raise AssertionError("the demo data has no insured graduate with a case at the clerk's department")


def married_applicant(dataset: Dataset) -> tuple[Person, Person, str]:
    """A married person with a case handled by the clerk's department, their spouse, and that case's number."""
    for person in dataset.persons:
        if person.marriage.spouse_id is None:
            continue
        for case in dataset.cases_by_applicant.get(person.id_number, ()):
            if dataset.service_items_by_code[case.service_item].department == CLERK_DEPARTMENT:
                return person, dataset.persons_by_id[person.marriage.spouse_id], case.case_number
    raise AssertionError("the demo data has no married applicant with a case at the clerk's department")
