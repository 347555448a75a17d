"""The ``onewindow`` command: serve a configuration, check it, print the schema, or run the demo.

onewindow demo                      # demo departments + gateway with GraphiQL on http://127.0.0.1:8000/graphql
onewindow demo --config mine.yaml   # the same, with your own file laid over the demo configuration
onewindow departments               # only the simulated departments; prints `export DEMO_...=` lines
onewindow check onewindow.yaml      # validate a configuration; --probe also reaches every source once
onewindow serve onewindow.yaml      # run the gateway under uvicorn; --workers N: N processes on the port
onewindow serve city.yaml --subgraph   # ...as an Apollo Federation v2 subgraph, for a province's router
onewindow schema [CONFIG]           # print the unified schema (SDL), with a configuration's model and raw types
onewindow schema CONFIG --subgraph  # print the configuration's federation subgraph SDL
onewindow policy explain CONFIG --kind clerk --department 民政局 --field Person.maritalStatus
onewindow keys create|list|revoke   # API keys for counter terminals and integrators
onewindow audit verify|prune        # the disclosure audit trail
onewindow forms coverage --demo     # how much of each configured form the departments prefill
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging.config
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette

from auth.audit.cli import audit_app
from auth.keys_cli import keys_app
from auth.policy_cli import policy_app
from gateway.app import build_adapters, create_app, serving_builder
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError
from gateway.forms_cli import forms_app
from gateway.logs import LogFormat, logging_config
from gateway.pages import console_enabled
from gateway.probe import ProbeReport, probe_all
from gateway.raw import RawField
from gateway.reload import DEFAULT_RELOAD_INTERVAL, ReloadingGateway
from gateway.serving import serve_asgi
from gateway.settings import GatewaySettings
from gateway.sources import SourceSet
from gateway.workers import Supervisor, WorkerSpec, refuse_process_state
from schema.federation import PURPOSE_HEADER, Subgraph
from schema.query import build_schema

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="OneWindow: one GraphQL endpoint over department systems."
)
_out = Console()
_err = Console(stderr=True)
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(forms_app, name="forms")

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "demo" / "onewindow.yaml"
_SUBGRAPH_HELP = (
    "Serve /graphql as an Apollo Federation v2 subgraph for a province's router to compose (docs/federation.md): "
    "Person @key(idNumber), LegalEntity @key(creditCode), each with the fields this file's sources provide; only "
    f"lookups by key at the root. The router forwards Authorization and the purpose as {PURPOSE_HEADER}."
)


def _load(path: Path) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {path}: {exc}")
        raise typer.Exit(2) from None


def _build(cfg: GatewayConfig, where: object, build: Callable[[GatewayConfig], Starlette] = create_app) -> Starlette:
    """The gateway for ``cfg``, built by ``build`` as ``serve`` builds it (nothing started); a wrong setting exits 2
    naming its key."""
    try:
        return build(cfg)
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {where}: {exc}")
        raise typer.Exit(2) from None


@app.command()
def schema(
    config: Annotated[
        Path | None, typer.Argument(help="A configuration: its model and raw namespaces join the built-in schema.")
    ] = None,
    subgraph: Annotated[
        bool,
        typer.Option("--subgraph", help="The configuration's federation subgraph, as `serve --subgraph` serves it."),
    ] = False,
) -> None:
    """Print the GraphQL schema (SDL): the built-in one, or a configuration's with its model and raw namespaces
    (reached once, to read the departments' own descriptions); with --subgraph, the configuration's federation
    subgraph (what a router reads from `_service { sdl }`)."""
    if config is None:
        if subgraph:
            _err.print("[red]--subgraph needs a configuration: its sources say which fields the subgraph holds[/]")
            raise typer.Exit(2)
        sys.stdout.write(str(build_schema()) + "\n")
        return
    cfg = _load(config)
    if subgraph:
        sys.stdout.write(str(build_schema(catalog=cfg.catalog, subgraph=Subgraph.of(cfg))) + "\n")
        return
    try:
        raw = asyncio.run(_describe_raw(cfg)) if any(src.raw for src in cfg.sources.values()) else []
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {config}: {exc}")
        raise typer.Exit(2) from None
    sys.stdout.write(str(build_schema(catalog=cfg.catalog, raw=raw)) + "\n")


async def _describe_raw(cfg: GatewayConfig) -> list[RawField]:
    sources = SourceSet(cfg, build_adapters(cfg))
    try:
        await sources.open()
        for name, error in sources.open_errors.items():
            _err.print(f"[yellow]{name}[/]: raw namespace left out, {error.code} {error.reason}")
        return await sources.describe_raw()
    finally:
        await sources.aclose()


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="The YAML configuration file.")],
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Call each source once with its credentials: its probe query for probe.key, checking the paths "
            "its provides read (or only reach it when it has no probe).",
        ),
    ] = False,
) -> None:
    """Validate a configuration file as ``serve`` would build it; with --probe, also call every source once.

    With ``--probe``, a source with ``probe: {key, query}`` is asked that query for that key with the gateway's
    credentials, and every record path its ``provides`` read must be in the answer (missing ones are named); a
    key the department does not hold, or credentials it refuses, fail the probe. A source without ``probe`` is
    only reached. Exits 1 when any probe fails, 2 for a configuration error.
    """
    cfg = _load(config)
    _build(cfg, config)  # the same compile step as serve: policy, identity, cache, safelist, rate limits, adapters
    table = Table(title=f"{config}: {len(cfg.sources)} sources")
    for column in ("source", "kind", "department", "fields"):
        table.add_column(column)
    if probe:
        table.add_column("probe")
    reports = asyncio.run(probe_all(cfg, build_adapters(cfg))) if probe else {}
    failed = False
    for name, src in cfg.sources.items():
        row = [name, src.kind, src.department, str(len(src.provides))]
        if probe:
            report = reports[name]
            failed = failed or not report.ok
            row.append(_probe_cell(report))
        table.add_row(*row)
    _out.print(table)
    for name, report in reports.items():
        if not report.ok:  # in full, unwrapped: the paths named are what the operator fixes
            _out.print(f"[red]probe failed[/] {name}: {report.detail}", soft_wrap=True, markup=True, highlight=False)
    if failed:
        raise typer.Exit(1)


def _probe_cell(report: ProbeReport) -> str:
    if not report.ok:
        return f"[red]{report.detail}[/]"
    what = "reached" if report.status == "reachable" else "answered"
    return f"[green]ok[/] {what}: {report.detail} ({report.elapsed_ms:.0f} ms)"


@app.command()
def serve(
    config: Annotated[Path | None, typer.Argument(help="The YAML configuration file (or ONEWINDOW_CONFIG).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes serving the port, each with its own socket (SO_REUSEPORT); above 1, the cache, rate "
            "limits and audit must live in Redis and PostgreSQL.",
        ),
    ] = 1,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="text for a terminal, json for a log collector (or ONEWINDOW_LOG_FORMAT)."),
    ] = None,
    reload_interval: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds between reads of the configuration file: a changed file is reloaded without dropping "
            "requests (0: only at SIGHUP).",
        ),
    ] = DEFAULT_RELOAD_INTERVAL,
    subgraph: Annotated[bool, typer.Option("--subgraph", help=_SUBGRAPH_HELP)] = False,
) -> None:
    """Run the gateway for a configuration file under uvicorn (in ``--workers`` processes); reload the file when
    it changes or at SIGHUP, refusing (and logging) a file start-up would refuse. With --subgraph, as an Apollo
    Federation v2 subgraph."""
    settings = GatewaySettings()
    if log_format is not None:
        settings.log_format = log_format
    path = config or settings.config
    if path is None:
        _err.print("[red]no configuration file: pass one or set ONEWINDOW_CONFIG[/]")
        raise typer.Exit(2)
    cfg = _load(path)
    # the same options for every configuration the reloader builds; the counters carry on across reloads
    build = serving_builder(debug=settings.debug or None, subgraph=subgraph)
    application = _build(cfg, path, build)
    host = host or settings.host or cfg.http.host
    port = port if port is not None else (settings.port or cfg.http.port)
    if workers > 1:  # each process with a socket of its own on the port (gateway/workers.py)
        spec = WorkerSpec.of(settings, path, host, port, reload_interval, subgraph=subgraph)
        raise typer.Exit(_supervise(path, cfg, spec, workers))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the gateway's lifespan listens for it
    reloading = ReloadingGateway(
        path,
        application,
        cfg,
        build=build,
        interval=reload_interval,
        hangup=True,
        freeze_startup_objects=True,
    )
    uvicorn.run(
        reloading,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # redacted; the access log without query-string values (text), or one JSON line per request (json)
        log_config=logging_config(settings.log_level, settings.log_format),
    )


def _supervise(path: Path, cfg: GatewayConfig, spec: WorkerSpec, workers: int) -> int:
    """Serve ``spec`` in ``workers`` processes (:mod:`gateway.workers`); refuse, before any starts, a configuration
    whose state one process keeps in its memory."""
    try:
        refuse_process_state(cfg, workers)
    except ConfigError as exc:
        _err.print(f"[bold red]configuration error[/] in {path}: {exc}")
        raise typer.Exit(2) from None
    if spec.port == 0:
        _err.print("[red]--workers needs a fixed port: each worker binds its own socket to it[/]")
        raise typer.Exit(2)
    logging.config.dictConfig(logging_config(spec.log_level, spec.log_format))
    return Supervisor(spec, workers).run()


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="The gateway's port.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    latency: Annotated[float, typer.Option(help="Artificial latency of each department, in seconds.")] = 0.0,
    failure_rate: Annotated[float, typer.Option(help="Share of department requests that fail (0 to 1).")] = 0.0,
    data_dir: Annotated[Path | None, typer.Option(help="Where to write the demo databases.")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A file laid over the demo configuration: your own sources (and settings) beside the simulated "
            "departments.",
        ),
    ] = None,
    log_format: Annotated[LogFormat, typer.Option(help="text for a terminal, json for a log collector.")] = "text",
) -> None:
    """Start the demo departments on loopback and the gateway with GraphiQL; with --config, your file laid over
    the demo configuration (an integrator's workbench)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(host, port, latency, failure_rate, data_dir, config, log_format))


async def _demo(
    host: str,
    port: int,
    latency: float,
    failure_rate: float,
    data_dir: Path | None,
    overlay: Path | None,
    log_format: LogFormat = "text",
) -> None:
    from demo.departments import DemoDepartments

    with tempfile.TemporaryDirectory(prefix="onewindow-demo-") as tmp:
        async with DemoDepartments(data_dir or Path(tmp), latency=latency, failure_rate=failure_rate) as departments:
            where = "the demo configuration" + (f" with {overlay} over it" if overlay is not None else "")
            try:
                cfg = load_config(
                    DEMO_CONFIG,
                    variables={**os.environ, **departments.variables},
                    overlays=[overlay] if overlay is not None else [],
                )
            except ConfigError as exc:
                _err.print(f"[bold red]configuration error[/] in {where}: {exc}")
                raise typer.Exit(2) from None
            application = _build(cfg, where, functools.partial(create_app, graphiql=True, freeze_startup_objects=True))
            log_config = logging_config("info", log_format)
            async with serve_asgi(application, host=host, port=port, log_config=log_config) as url:
                _banner(f"{url}/graphql", cfg, departments.dataset.sample_purpose.case_number)
                await asyncio.Event().wait()  # until Ctrl+C


@app.command()
def departments(
    latency: Annotated[float, typer.Option(help="Artificial latency of each department, in seconds.")] = 0.0,
    failure_rate: Annotated[float, typer.Option(help="Share of department requests that fail (0 to 1).")] = 0.0,
    data_dir: Annotated[Path | None, typer.Option(help="Where to write the demo databases.")] = None,
) -> None:
    """Start only the simulated departments on loopback and print their variables, until Ctrl+C.

    The output is shell ``export`` lines (``export DEMO_HRSS_URL=http://127.0.0.1:...``) for the ``${DEMO_...}``
    placeholders of demo/onewindow.yaml, so that ``onewindow serve`` or ``check --probe`` of a file using them,
    run in another shell, reaches these departments.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_departments(latency, failure_rate, data_dir))


async def _departments(latency: float, failure_rate: float, data_dir: Path | None) -> None:
    from demo.departments import DemoDepartments

    with tempfile.TemporaryDirectory(prefix="onewindow-departments-") as tmp:
        # Loopback only: the simulated departments hold made-up personal data and check no credentials.
        async with DemoDepartments(data_dir or Path(tmp), latency=latency, failure_rate=failure_rate) as running:
            for name, value in sorted(running.variables.items()):
                sys.stdout.write(f"export {name}={shlex.quote(value)}\n")
            sys.stdout.flush()
            _err.print("The simulated departments are up on loopback. Press Ctrl+C to stop.")
            await asyncio.Event().wait()  # until Ctrl+C


def _banner(url: str, cfg: GatewayConfig, purpose: str) -> None:
    table = Table(title="Demo departments (simulated, on loopback)")
    table.add_column("source")
    table.add_column("kind")
    table.add_column("department")
    for name, src in cfg.sources.items():
        table.add_row(name, src.kind, src.department)
    _out.print(table)
    _out.print(f"\n[bold green]OneWindow is up.[/] Open GraphiQL at [bold]{url}[/]")
    if console_enabled(cfg.http.console, graphiql=True, production=cfg.security.production):
        _out.print(f"The clerk's console is at [bold]{url.removesuffix('/graphql')}/console[/].")
    principal = cfg.auth.development_principal
    if principal is not None:
        _out.print(
            f"Requests without credentials act as [bold]{principal.subject}[/], a {principal.kind} of "
            f"{principal.department}. Its purpose for the sample person is case [bold]{purpose}[/]."
        )
    _out.print("Try the person [bold]11010519491231002X[/] and the entity [bold]91110000600037341L[/]:")
    _out.print(
        f'  {{ person(idNumber: "11010519491231002X", purpose: {{caseNumber: "{purpose}"}}) {{ name maritalStatus '
        "socialInsurance { insured } degrees { degree } provenance { field source stale masked } } }\n"
    )
    _out.print("Press Ctrl+C to stop.")


def main() -> None:
    app()
