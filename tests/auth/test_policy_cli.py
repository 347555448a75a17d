"""``onewindow policy explain`` on the demo configuration, with no department running and no variables set."""

from __future__ import annotations

from typer.testing import CliRunner

from gateway.cli import DEMO_CONFIG, app


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
