"""``onewindow policy explain``: why a field would be released to a principal, or refused.

    onewindow policy explain onewindow.yaml --kind clerk --department 民政局 --role case_handler \\
        --field Person.maritalStatus
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from auth.policy import Policy
from auth.principal import Principal, PrincipalKind
from gateway.config import load_config
from gateway.errors import ConfigError
from schema.catalog import CATALOG

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
) -> None:
    """Print why each --field would be released to the described principal, or refused, rule by rule."""
    try:
        cfg = load_config(config, variables=_Unresolved(os.environ))
        policy = Policy(cfg)
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {config}: {exc}")
        raise typer.Exit(2) from None
    principal = Principal(
        subject=subject,
        kind=kind,
        via="api_key" if scope else "explain",
        department=department,
        roles=frozenset(role or ()),
        scopes=frozenset(scope or ()),
    )
    refused = False
    for target in field:
        entity, _, name = target.partition(".")
        if entity not in CATALOG or not name:
            _err.print(f"[bold red]unknown field[/] {target!r} (use Entity.field, e.g. Person.maritalStatus)")
            raise typer.Exit(2)
        _out.print(f"[bold]{target}[/]")
        lines = policy.explain(principal, entity, name, own=own)
        for line in lines:
            _out.print(f"  {line}", highlight=False)
        refused = refused or lines[-1].startswith("REFUSED")
    raise typer.Exit(1 if refused else 0)


class _Unresolved(Mapping[str, str]):
    """The environment, where a variable that is not set reads as a placeholder: explaining the policy needs no
    department addresses or secrets."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        return self._environ.get(name, f"http://unset.invalid/{name}")

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)
