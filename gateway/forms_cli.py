"""``onewindow forms coverage``: how much of each configured form the departments can prefill.

For each form it finds applicants with a case of the form's service item (from the case listing of the approval
platform), prefills the form for each as a clerk of the item's department under that case -- through the policy
and the audit, like any request -- and prints: fields, fields some source provides, the share prefilled, refusals
by reason::

    onewindow forms coverage --demo             # the demo departments, started for the run
    onewindow forms coverage onewindow.yaml -n 50
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from auth.access import Access, Purpose
from auth.audit import AuditLog
from auth.policy import Policy
from auth.principal import Principal, PrincipalKind
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError, SourceError
from gateway.forms import CompiledForm
from gateway.mapping import EntityKey
from gateway.prefill import FieldStatus, prefill
from gateway.sources import RequestSources, SourceSet, encode_cursor

__all__ = ["FormCoverage", "forms_app", "measure"]

DEFAULT_APPLICANTS = 20
_PAGE = 100

forms_app = typer.Typer(no_args_is_help=True, help="Configured forms (forms:).")
_out = Console()
_err = Console(stderr=True)


@dataclass
class FormCoverage:
    """What a form's prefill gave over its applicants."""

    form: str
    fields: int
    held: int
    applicants: int = 0
    prefilled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)

    @property
    def share(self) -> float:
        """Prefilled values among the values of held fields asked."""
        asked = self.held * self.applicants
        return self.prefilled / asked if asked else 0.0


@forms_app.command()
def coverage(
    config: Annotated[Path | None, typer.Argument(help="The YAML configuration file.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Start the demo departments and use the demo file.")] = False,
    applicants: Annotated[int, typer.Option("-n", "--applicants", help="Applicants per form.")] = DEFAULT_APPLICANTS,
) -> None:
    """Prefill each form for N applicants and print its coverage."""
    if (config is None) == (not demo):
        _err.print("[red]give a configuration file or --demo[/]")
        raise typer.Exit(2)
    results = asyncio.run(_demo(applicants) if demo else _run(_load(config), applicants))  # type: ignore[arg-type]
    table = Table(title=f"Form coverage ({applicants} applicants per form)")
    for column in ("form", "applicants", "fields", "held by a department", "prefilled", "refusals by reason"):
        table.add_column(column)
    for r in results:
        refusals = ", ".join(f"{reason} {count}" for reason, count in sorted(r.refusals.items())) or "-"
        table.add_row(r.form, str(r.applicants), str(r.fields), str(r.held), f"{r.share:.0%}", refusals)
    _out.print(table)


def _load(path: Path) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {path}: {exc}")
        raise typer.Exit(2) from None


async def _demo(applicants: int) -> list[FormCoverage]:
    from demo.departments import DemoDepartments
    from gateway.cli import DEMO_CONFIG

    with tempfile.TemporaryDirectory(prefix="onewindow-forms-") as tmp:
        async with DemoDepartments(Path(tmp)) as departments:
            config = load_config(DEMO_CONFIG, variables={**os.environ, **departments.variables})
            return await _run(config, applicants)


async def _run(config: GatewayConfig, applicants: int) -> list[FormCoverage]:
    from gateway.app import build_adapters

    sources = SourceSet(config, build_adapters(config))
    audit = AuditLog(config.auth.audit) if config.auth.audit is not None else None
    try:
        await sources.open()
        if audit is not None:
            await audit.open()
        return await measure(config, sources, audit, applicants)
    finally:
        await sources.aclose()
        if audit is not None:
            await audit.aclose()


async def measure(
    config: GatewayConfig, sources: SourceSet, audit: AuditLog | None, applicants: int
) -> list[FormCoverage]:
    """Each form's coverage over ``applicants`` applicants with a case of its item (fewer if there are fewer)."""
    policy = Policy(config)
    out = []
    for form in config.compiled_forms.values():
        held = sum(all(sources.providers(h.entity, h.field) for h in f.hops) for f in form.fields)
        result = FormCoverage(form.name, len(form.fields), held)
        for applicant, case, department in await _cases(sources, form, applicants):
            principal = Principal(
                subject="onewindow forms coverage",
                kind=PrincipalKind.CLERK,
                via="cli",
                department=department,
                roles=frozenset({"case_handler"}),
            )
            access = Access(principal, policy, sources.for_request(principal), request_id=f"forms-{uuid.uuid4()}")
            filled = await prefill(access, form, applicant, purpose=Purpose(case, applicant))
            entries, _ = access.drain()
            if entries and audit is not None:
                await audit.write(entries)
            result.applicants += 1
            for answer in filled.fields:
                result.statuses[answer.status] += 1
                if answer.status is FieldStatus.PREFILLED or answer.status is FieldStatus.CONFLICT:
                    result.prefilled += 1
                elif answer.status is FieldStatus.REFUSED and answer.reason is not None:
                    result.refusals[answer.reason] += 1
        out.append(result)
    return out


async def _cases(sources: SourceSet, form: CompiledForm, wanted: int) -> list[tuple[str, str, str]]:
    """(applicant, case, handling department) for up to ``wanted`` applicants with a case of the form's item."""
    request: RequestSources = sources.for_request()
    item = form.template.service_item
    try:
        department = await request.value("ServiceItem", item, "department")
    except SourceError:
        department = None
    found: dict[str, str] = {}
    after: str | None = None
    while len(found) < wanted:
        page = await request.search("Case", {}, first=_PAGE, after=after)
        for key in page.keys:
            case_item = await request.value("Case", key, "serviceItem")
            applicant = await request.value("Case", key, "applicant")
            ours = isinstance(case_item, EntityKey) and case_item.key == item
            if ours and isinstance(applicant, EntityKey) and applicant.entity == form.template.applicant:
                found.setdefault(applicant.key, key)
        if not page.has_next or not page.keys:
            break
        after = encode_cursor(page.offset + len(page.keys) - 1)
    return [(applicant, case, str(department)) for applicant, case in list(found.items())[:wanted]]
