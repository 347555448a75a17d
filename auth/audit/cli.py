"""``onewindow audit``: check the disclosure audit's hash chain, and prune it to its retention period.

onewindow audit verify --config onewindow.yaml   # exit 0 and a summary; exit 1 naming the first broken record
onewindow audit prune --config onewindow.yaml    # delete records past retention, leave an anchored checkpoint

Without ``--config`` the file named by ``ONEWINDOW_CONFIG`` is used; the store is ``auth.audit`` in that file.
A configuration error exits 2, as does an audit store that cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

from auth.audit.chain import VerifyReport
from auth.audit.config import AuditConfig
from auth.audit.log import AuditLog
from auth.audit.retention import PruneReport
from auth.cli_config import ConfigOption, ConfigUnusable, auth_section
from gateway.errors import GatewayError

__all__ = ["audit_app"]

audit_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The disclosure audit: verify its hash chain, prune it."
)

_T = TypeVar("_T")


def _audit_config(path: Path | None) -> AuditConfig:
    try:
        return auth_section(path, lambda auth: auth.audit, "the audit is turned off in {path} (auth.audit: null)")
    except ConfigUnusable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _run(config: AuditConfig, action: Callable[[AuditLog], Awaitable[_T]]) -> _T:
    async def run() -> _T:
        async with AuditLog(config) as audit:
            return await action(audit)

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        typer.echo(f"{exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None


@audit_app.command()
def verify(config: ConfigOption = None) -> None:
    """Check every record's hash and link, the checkpoints and the chain head."""
    report: VerifyReport = _run(_audit_config(config), AuditLog.verify)
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command()
def prune(config: ConfigOption = None) -> None:
    """Delete the records older than the retention period and leave an anchored checkpoint."""
    report: PruneReport = _run(_audit_config(config), AuditLog.prune)
    typer.echo(report.summary())
    if report.refused:
        raise typer.Exit(1)
