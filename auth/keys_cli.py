"""``onewindow keys``: create, list and revoke the API keys of counter terminals and integrators.

onewindow keys create --subject hall-3-window-7 --kind clerk --window A-07 --role case_handler --expires 90d
onewindow keys list
onewindow keys revoke 3f2a9c0d1e2b4a5c

The keys live in the store the gateway reads, ``auth.api_keys`` of the configuration file named by ``--config`` or
``ONEWINDOW_CONFIG``. A new key is printed once, alone on standard output, so a script can capture it; it cannot be
shown again. A revoked key stops working at once in the gateway processes that ask the store, and within
``auth.api_keys.cache_ttl`` in those that remembered it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auth.apikeys import ApiKeyConfig, ApiKeyInfo, ApiKeyStatus, ApiKeyStore
from auth.cli_config import ConfigOption, ConfigUnusable, auth_section
from auth.principal import PrincipalKind
from gateway.durations import parse_duration
from gateway.errors import ConfigError, GatewayError

__all__ = ["keys_app"]

keys_app = typer.Typer(
    no_args_is_help=True,
    help="Create, list and revoke API keys for counter terminals and integrators.",
)

_T = TypeVar("_T")
_STATUS_STYLE = {ApiKeyStatus.ACTIVE: "green", ApiKeyStatus.EXPIRED: "yellow", ApiKeyStatus.REVOKED: "red"}


def _fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _store_config(config: Path | None) -> ApiKeyConfig:
    try:
        return auth_section(config, lambda auth: auth.api_keys, "{path} has no auth.api_keys section: API keys are off")
    except ConfigUnusable as exc:
        raise _fail(str(exc), 2) from None


def _with_store(config: Path | None, operation: Callable[[ApiKeyStore], Awaitable[_T]]) -> _T:
    store_config = _store_config(config)

    async def run() -> _T:
        async with ApiKeyStore(store_config) as store:
            return await operation(store)

    try:
        return asyncio.run(run())
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    except GatewayError as exc:
        raise _fail(exc.message) from None


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


@keys_app.command()
def create(
    subject: Annotated[str, typer.Option(help="Who the key stands for, e.g. hall-3-window-7 or tax-bureau-sync.")],
    kind: Annotated[PrincipalKind, typer.Option(case_sensitive=False, help="clerk, officer, integrator, service.")],
    label: Annotated[str | None, typer.Option(help="A note for whoever lists the keys.")] = None,
    department: Annotated[str | None, typer.Option(help="The department the caller belongs to.")] = None,
    window: Annotated[str | None, typer.Option(help="The counter window, for a hall terminal.")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="A role (repeatable).")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="A scope (repeatable).")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d (default: auth.api_keys.default_expiry).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once: it is not stored and cannot be shown again."""
    try:
        expires_in = None if expires is None else parse_duration(expires)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None

    async def operation(store: ApiKeyStore) -> tuple[ApiKeyInfo, str]:
        return await store.create(
            subject=subject,
            kind=kind,
            label=label,
            department=department,
            window=window,
            roles=role or (),
            scopes=scope or (),
            expires_in=expires_in,
        )

    try:
        info, key = _with_store(config, operation)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    err = Console(stderr=True)
    err.print(
        f"Created API key [bold]{info.key_id}[/] for {info.kind} [bold]{escape(info.subject)}[/], "
        f"expires {_when(info.expires_at)} UTC:"
    )
    typer.echo(key)
    err.print("[bold yellow]This key is shown once and cannot be recovered: store it now.[/]")


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """List every key with its status (active, expired, revoked); secrets are never shown."""
    infos = _with_store(config, ApiKeyStore.list)
    out = Console()
    if not infos:
        out.print("no API keys")
        return
    # On a narrow terminal free text gives way; what names a key and says whether it works comes first, whole.
    table = Table(title=f"{len(infos)} API keys", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("key id", no_wrap=True, min_width=16)
    table.add_column("status", min_width=7)
    table.add_column("kind", min_width=10)
    for column in ("subject", "label", "department", "scopes"):
        table.add_column(column)
    table.add_column("expires", min_width=10)
    table.add_column("created")
    now = dt.datetime.now(dt.UTC)
    for info in infos:
        status = info.status(now)
        table.add_row(
            info.key_id,
            f"[{_STATUS_STYLE[status]}]{status.value}[/]",
            info.kind.value,
            escape(info.subject),
            escape(info.label or ""),
            escape(info.department or ""),
            escape(", ".join(info.scopes)),
            _when(info.expires_at),
            _when(info.created_at),
        )
    out.print(table)


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id, as `onewindow keys list` shows it.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key for good."""

    async def operation(store: ApiKeyStore) -> bool:
        return await store.revoke(key_id)

    if not _with_store(config, operation):
        raise _fail(f"no API key with id {key_id!r}")
    Console().print(f"revoked API key [bold]{escape(key_id)}[/]")
