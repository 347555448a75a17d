"""``onewindow policy explain``: why a field would be released to a principal, or refused.

    onewindow policy explain onewindow.yaml --kind clerk --department 民政局 --role case_handler \\
        --field Person.maritalStatus

Under a purpose (``--purpose-item`` and the item's ``--purpose-department``; ``--closed-on`` for a closed case,
``--intake`` for an intake purpose; ``--of member`` for a household member), with the purposes rules::

    onewindow policy explain onewindow.yaml --department 政务服务中心 --role comprehensive_window \\
        --field Person.socialInsurance --purpose-item 11010501300003 --purpose-department 民政局 --of member
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from auth.policy import Policy
from auth.principal import Principal, PrincipalKind
from auth.purposes import PurposeFacts, Role
from gateway.config import GatewayConfig, parse_config
from gateway.errors import ConfigError

__all__ = ["policy_app"]

policy_app = typer.Typer(no_args_is_help=True, help="Inspect the sharing policy.")
_out = Console()
_err = Console(stderr=True)


@policy_app.command()
def explain(
    config: Annotated[Path, typer.Argument(help="The YAML configuration file.")],
    field: Annotated[list[str], typer.Option("--field", help="Entity.field, e.g. Person.maritalStatus; repeatable.")],
    kind: Annotated[PrincipalKind, typer.Option(help="The principal's kind.")] = PrincipalKind.CLERK,
    department: Annotated[str | None, typer.Option(help="The principal's department.")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="A role the principal holds; repeatable.")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="An API key scope; implies --via api_key.")] = None,
    own: Annotated[bool, typer.Option("--own", help="A citizen reading their own record.")] = False,
    subject: Annotated[str, typer.Option(help="The principal's subject, for the printout.")] = "principal",
    window: Annotated[str | None, typer.Option(help="The window the principal sits at, e.g. A-01.")] = None,
    purpose_item: Annotated[str | None, typer.Option(help="The purpose's service item code.")] = None,
    purpose_department: Annotated[str | None, typer.Option(help="The department of the purpose's item.")] = None,
    closed_on: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The purpose's case closed on this day.")
    ] = None,
    intake: Annotated[bool, typer.Option("--intake", help="The purpose is an intake, registered now.")] = False,
    of: Annotated[
        Role, typer.Option("--of", help="Whom the field is read of, relative to the applicant.")
    ] = Role.APPLICANT,
) -> None:
    """Print why each --field would be released to the described principal, or refused, rule by rule."""
    try:
        cfg = _load(config)
        policy = Policy(cfg)
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {config}: {exc}")
        raise typer.Exit(2) from None
    principal = Principal(
        subject=subject,
        kind=kind,
        via="api_key" if scope else "explain",
        department=department,
        window=window,
        roles=frozenset(role or ()),
        scopes=frozenset(scope or ()),
    )
    purpose = None
    if purpose_item is not None:
        now = policy.now()
        purpose = PurposeFacts(
            "<intake>" if intake else "<case>",
            purpose_item,
            purpose_department,
            intake=intake,
            closed_at=closed_on.replace(tzinfo=dt.UTC) if closed_on is not None else None,
            expires_at=now + policy.intakes.ttl if intake else None,
            member=of is Role.MEMBER,
        )
    elif intake or closed_on is not None or purpose_department is not None:
        _err.print("[bold red]--purpose-item is required[/] with --purpose-department, --closed-on or --intake")
        raise typer.Exit(2)
    refused = False
    for target in field:
        entity, _, name = target.partition(".")
        if entity not in cfg.catalog or not name:
            _err.print(f"[bold red]unknown field[/] {target!r} (use Entity.field, e.g. Person.maritalStatus)")
            raise typer.Exit(2)
        _out.print(f"[bold]{target}[/]")
        lines = policy.explain(principal, entity, name, own=own, purpose=purpose, role=of)
        for line in lines:
            _out.print(f"  {line}", highlight=False, soft_wrap=True)
        refused = refused or lines[-1].startswith("REFUSED")
    raise typer.Exit(1 if refused else 0)


_BARE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


_DATABASE_KEY = re.compile(r"^\s*url:\s*$")


def _placeholder(match: re.Match[str]) -> str:
    """An unset variable's stand-in: an in-memory database where a ``url:`` key (a database) takes it, an address
    that cannot resolve elsewhere (a department's ``base_url``, ``wsdl``, ...)."""
    if match[1] in os.environ:
        return match[0]
    line = match.string[match.string.rfind("\n", 0, match.start()) + 1 : match.start()]
    return "sqlite+aiosqlite://" if _DATABASE_KEY.match(line) else f"http://unset.invalid/{match[1]}"


def _load(path: Path) -> GatewayConfig:
    """The configuration, with each ``${VAR}`` that is unset and has no default read as a placeholder: explaining
    the policy needs no department addresses or secrets."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read configuration file {path}: {exc.strerror}") from None
    text = _BARE_VARIABLE.sub(_placeholder, text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, os.environ)
