"""Form templates: paths checked at start-up, naming the form and label; the coverage command over the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.errors import ConfigError
from tests.demo_config import demo_config

VARIABLES = {
    "DEMO_PUBLIC_SECURITY_WSDL": "http://127.0.0.1:1/ps?wsdl",
    "DEMO_CIVIL_AFFAIRS_WSDL": "http://127.0.0.1:1/ca?wsdl",
    "DEMO_HRSS_URL": "http://127.0.0.1:1",
    "DEMO_MARKET_URL": "http://127.0.0.1:1",
    "DEMO_LICENCES_URL": "http://127.0.0.1:1",
    "DEMO_EDUCATION_DB_URL": "sqlite+aiosqlite:///edu.db",
    "DEMO_APPROVAL_DB_URL": "sqlite+aiosqlite:///approval.db",
}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("Person.nickname", "Person has no field 'nickname'"),
        ("Person.socialInsurance.town", "SocialInsurance has no field 'town'"),
        ("LegalEntity.name", "must start at the form's applicant, Person"),
        ("Person.spouse", "name one of its fields"),
        ("Person.householdMembers.name", "a form field holds one value"),
        ("Person.spouse.nickname", "Person has no field 'nickname'"),
    ],
)
def test_a_wrong_path_fails_at_start_up_naming_form_and_label(tmp_path: Path, path: str, message: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["forms"]["social_assistance"]["fields"]["配偶姓名"]["path"] = path

    with pytest.raises(ConfigError) as caught:
        demo_config(VARIABLES, tmp_path, open_policy=False, edit=edit)
    assert caught.value.path == "forms.social_assistance.fields.配偶姓名.path"
    assert message in caught.value.reason


def test_the_demo_forms_compile_with_relations_and_objects(tmp_path: Path) -> None:
    forms = demo_config(VARIABLES, tmp_path, open_policy=False).compiled_forms
    assert sorted(forms) == [
        "business_licence_change",
        "public_rental_housing",
        "social_assistance",
        "teacher_qualification",
    ]
    spouse = next(f for f in forms["social_assistance"].fields if f.path == "Person.spouse.name")
    assert [(h.entity, h.field) for h in spouse.hops] == [("Person", "spouse"), ("Person", "name")]


def test_coverage_command_prints_each_form_over_the_demo() -> None:
    result = CliRunner().invoke(app, ["forms", "coverage", "--demo", "-n", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for form in ("teacher_qualification", "social_assistance", "business_licence_change", "public_rental_housing"):
        assert form in result.output
    assert "NOT_SHARED 3" in result.output  # the teacher form's ethnicity, refused for each of 3 applicants
