"""``onewindow policy explain`` on the demo configuration, with no department running and no variables set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gateway.cli import DEMO_CONFIG, app
from tests.demo_config import demo_yaml


def test_explain_prints_each_rule_and_exits_non_zero_when_refused() -> None:
    args = ["policy", "explain", str(DEMO_CONFIG), "--kind", "clerk", "--department", "交通运输局"]
    result = CliRunner().invoke(app, [*args, "--field", "Person.maritalStatus"])
    assert result.exit_code == 1, result.output
    assert "source civil_affairs: sharing conditional, owner 民政局" in result.output
    assert "REFUSED NO_SHARING_AGREEMENT: 交通运输局 holds no sharing agreement with civil_affairs" in result.output


def test_explain_released_and_masked() -> None:
    args = ["policy", "explain", str(DEMO_CONFIG), "--kind", "clerk", "--department", "民政局"]
    result = CliRunner().invoke(app, [*args, "--field", "Person.phone"])
    assert result.exit_code == 0, result.output
    assert "masked as phone" in result.output
    revealed = CliRunner().invoke(app, [*args, "--role", "case_handler", "--field", "Person.phone"])
    assert "masked" not in revealed.output.splitlines()[-1]


def test_explain_refuses_an_unknown_field() -> None:
    result = CliRunner().invoke(app, ["policy", "explain", str(DEMO_CONFIG), "--field", "Person"])
    assert result.exit_code == 2


WINDOW = ["--kind", "clerk", "--department", "政务服务中心", "--role", "comprehensive_window"]
ALLOWANCE = ["--purpose-item", "11010501300003", "--purpose-department", "民政局"]


def test_explain_under_a_purpose_at_a_comprehensive_window() -> None:
    args = ["policy", "explain", str(DEMO_CONFIG), *WINDOW]
    alone = CliRunner().invoke(app, [*args, "--field", "Person.maritalStatus"])
    assert alone.exit_code == 1, alone.output
    assert "REFUSED NO_SHARING_AGREEMENT" in alone.output
    under = CliRunner().invoke(app, [*args, *ALLOWANCE, "--field", "Person.maritalStatus", "--field", "Person.degrees"])
    assert "handled by: the caller's window takes in item 11010501300003 -> read as 民政局" in under.output
    assert "RELEASED: released through civil_affairs" in under.output
    assert "REFUSED NOT_NEEDED: service item 11010501300003 needs no Person.degrees of the applicant" in under.output
    assert under.exit_code == 1
    member = CliRunner().invoke(app, [*args, *ALLOWANCE, "--of", "member", "--field", "Person.socialInsurance"])
    assert member.exit_code == 0, member.output
    assert "need to know (a comprehensive window): item 11010501300003 needs of the household member" in member.output
    other = CliRunner().invoke(
        app, [*args, "--purpose-item", "11010501200001", "--purpose-department", "公安局", "--field", "Person.name"]
    )
    assert "REFUSED PURPOSE_INVALID" in other.output


def test_explain_a_closed_case_beyond_its_grace_period(tmp_path: Path) -> None:
    def grace(data: dict[str, Any]) -> None:
        data["auth"]["policy"]["purposes"]["grace"] = "30d"

    config = demo_yaml(tmp_path, open_policy=False, edit=grace)
    args = ["policy", "explain", str(config), "--department", "民政局", *ALLOWANCE, "--field", "Person.name"]
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(app, [*args, "--closed-on", recent])
    assert result.exit_code == 0, result.output
    assert "grace period 30d -> still a purpose" in result.output
    result = CliRunner().invoke(app, [*args, "--closed-on", "2020-01-01"])
    assert result.exit_code == 1
    assert "REFUSED PURPOSE_EXPIRED: case <case> closed on 2020-01-01" in result.output
    intake = CliRunner().invoke(app, [*args[:-2], "--intake", "--field", "Person.degrees"])
    assert "need to know (an intake)" in intake.output
    assert "REFUSED NOT_NEEDED" in intake.output
