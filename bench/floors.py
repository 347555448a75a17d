"""How much of a person lookup's CPU is the frameworks' and how much is OneWindow's own: the floors under it.

    python bench/floors.py                          # 3 rounds of 5 s each, 10 connections
    python bench/floors.py --rounds 5 --duration 10

The same person workload as bench/cpu_profile.py (one person's social insurance from the demo hrss department at
0 ms, distinct ID numbers, cache off), served by five processes on the same uvicorn (httptools, uvloop), each timed
with wrk in turns and measured as process CPU per request:

- ``starlette``: a bare Starlette route answering a fixed JSON body (what HTTP in and out costs);
- ``starlette_call``: the route reads the JSON request, asks hrss for the person over aiohttp (one pooled
  session, as the gateway's department client) and answers the record as JSON: HTTP in, one department call, out;
- ``graphql_core_call``: the same call behind the minimal schema below, its document parsed and validated once and
  executed by graphql-core directly (strawberry's resolvers, none of its view): what GraphQL execution adds;
- ``strawberry_call``: the same call behind a minimal strawberry schema (``person(idNumber) { socialInsurance {
  insured contributionMonths city } }``, strawberry's parser and validation caches) on strawberry's ASGI view: what
  strawberry's request handling adds;
- ``onewindow``: the gateway on the open data-plane configuration (bench/run.py), as bench/cpu_profile.py runs it.

The differences between neighbours are what each layer costs; ``onewindow - strawberry_call`` is everything the
gateway itself does (identity, policy, audit, rate limits, resilience, mapping, metrics, its middleware).
Results go to ``<out>/floors.json`` and ``<out>/floors.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NewType

import strawberry
from harness import ROOT, cpu_seconds, free_port, lua, process, require_data, wait_http, wrk
from run import PERSON_QUERY, RESULTS, _body, data_plane_config, demo_departments, gateway_env, id_numbers

FLOORS = ("starlette", "starlette_call", "graphql_core_call", "strawberry_call")


async def _record(id_number: str) -> dict[str, Any] | None:
    raise RuntimeError("set by serve()")


IdNumber = strawberry.scalar(NewType("IdNumber", str), serialize=str, parse_value=str)


@strawberry.type
class SocialInsurance:
    insured: bool
    contribution_months: int
    city: str


@strawberry.type
class Person:
    id_number: strawberry.Private[str]

    @strawberry.field
    async def social_insurance(self) -> SocialInsurance | None:
        found = await _record(self.id_number)
        if found is None:
            return None
        return SocialInsurance(insured=found["insured"] == "1", contribution_months=found["months"], city=found["city"])


@strawberry.type
class Query:
    @strawberry.field
    def person(self, id_number: IdNumber) -> Person:
        return Person(id_number=id_number)


def serve(kind: str, port: int, department: str) -> None:
    """One floor server (run in its own process by :func:`main`)."""
    from inspect import isawaitable

    import aiohttp
    import orjson
    import uvicorn
    from graphql import execute, parse, validate
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from strawberry.asgi import GraphQL
    from strawberry.extensions import ParserCache, ValidationCache

    session: aiohttp.ClientSession | None = None

    async def record(id_number: str) -> dict[str, Any] | None:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=10))
        async with session.get(f"{department}/insured/{id_number}") as answer:
            if answer.status == 404:
                return None
            found: dict[str, Any] = await answer.json()
            return found

    def insurance(found: dict[str, Any] | None) -> dict[str, Any] | None:
        if found is None:
            return None
        return {"insured": found["insured"] == "1", "contributionMonths": found["months"], "city": found["city"]}

    fixed = json.dumps({"data": {"person": {"socialInsurance": {"insured": True}}}}).encode()

    async def plain(request: Request) -> Response:
        await request.body()
        return Response(fixed, media_type="application/json")

    async def called(request: Request) -> Response:
        body = json.loads(await request.body())
        answer = {"data": {"person": {"socialInsurance": insurance(await record(body["variables"]["id"]))}}}
        return Response(json.dumps(answer), media_type="application/json")

    global _record
    _record = record
    parsed: dict[str, Any] = {}

    async def core(request: Request) -> Response:
        body = orjson.loads(await request.body())
        query = body["query"]
        document = parsed.get(query)
        if document is None:
            document = parsed[query] = parse(query)
            assert not validate(schema._schema, document)
        result = execute(schema._schema, document, variable_values=body.get("variables"))
        if isawaitable(result):
            result = await result
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return Response(orjson.dumps(answer), media_type="application/json")

    caches = [lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)]  # as any production setup
    schema = strawberry.Schema(query=Query, extensions=caches)
    graphql = GraphQL[None, None](schema, graphql_ide=None)
    endpoints = {"starlette": plain, "starlette_call": called, "graphql_core_call": core, "strawberry_call": graphql}
    endpoint: Any = endpoints[kind]
    app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop", http="httptools"
    )


def _timed(url: str, pid: int, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    before = cpu_seconds(pid)
    figures = wrk(url, script, duration=args.duration, connections=args.connections, threads=2)
    figures["cpu_ms_per_request"] = round((cpu_seconds(pid) - before) * 1000 / max(figures["requests"], 1), 3)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve", choices=FLOORS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--department", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.department)
        return 0

    _, distinct = id_numbers(10_000)
    bodies = [_body(PERSON_QUERY, key) for key in distinct]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in (*FLOORS, "onewindow")}
    load = [_uptime()]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        script = lua(bodies, tmp / "person.lua")
        with demo_departments(0.0, tmp) as (variables, _stats), ExitStack() as running:
            department = variables["DEMO_HRSS_URL"]
            servers: dict[str, tuple[str, int]] = {}  # kind -> (its URL, its process id)
            for kind in FLOORS:
                port = free_port()
                here = [sys.executable, str(Path(__file__)), "--serve", kind, "--port", str(port)]
                proc = running.enter_context(process([*here, "--department", department]))
                servers[kind] = (f"http://127.0.0.1:{port}", proc.pid)
            port = free_port()
            gateway = [sys.executable, "-m", "gateway", "serve", str(data_plane_config(tmp)), "--port", str(port)]
            proc = running.enter_context(process(gateway, env=gateway_env(variables, tmp, cache=False)))
            servers["onewindow"] = (f"http://127.0.0.1:{port}", proc.pid)
            for kind, (url, _) in servers.items():
                wait_http(f"{url}/healthz" if kind == "onewindow" else url)
            for kind in ("strawberry_call", "onewindow"):
                require_data(servers[kind][0], bodies)
            for _ in range(args.rounds):
                for kind, (url, pid) in servers.items():
                    figures = _timed(f"{url}/graphql", pid, script, args)
                    rounds[kind].append(figures)
                    print(f"{kind:>16}: {figures['rps']:7.0f} req/s  CPU {figures['cpu_ms_per_request']:.3f} ms/req")
    load.append(_uptime())
    report = _report(rounds, args, load)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "floors.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (args.out / "floors.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _report(rounds: dict[str, list[dict[str, Any]]], args: argparse.Namespace, load: list[str]) -> dict[str, Any]:
    medians = {
        kind: {
            "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in runs),
            "rps": statistics.median(r["rps"] for r in runs),
            "cpu_rounds": [r["cpu_ms_per_request"] for r in runs],
        }
        for kind, runs in rounds.items()
    }
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": sys.version.split()[0],
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "load": load,
        "medians": medians,
    }


def _markdown(report: dict[str, Any]) -> str:
    medians = report["medians"]
    order = [*FLOORS, "onewindow"]
    lines = [
        "# The floors under a person lookup",
        "",
        "```",
        "python bench/floors.py",
        f"python bench/floors.py --duration {report['duration_s']} --rounds {report['rounds']}   # this run",
        "```",
        "",
        f"Python {report['python']}, {report['connections']} connections, departments at 0 ms, rounds taken in turns; "
        f"load: `{report['load'][0]}` at the start, `{report['load'][1]}` at the end.",
        "",
        "| server | CPU ms/req (median) | rounds | req/s | above the layer under it |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    previous: float | None = None
    for kind in order:
        figures = medians[kind]
        cpu = figures["cpu_ms_per_request"]
        above = "" if previous is None else f"+{cpu - previous:.3f}"
        rounds = ", ".join(f"{value:.3f}" for value in figures["cpu_rounds"])
        lines.append(f"| {kind} | {cpu:.3f} | {rounds} | {figures['rps']:.0f} | {above} |")
        previous = cpu
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    raise SystemExit(main())
