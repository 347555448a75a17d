"""OneWindow against GraphQL Mesh: the same demo departments, workloads and connections, in interleaved rounds.

    python bench/compare.py                          # 0 ms departments, 10 connections, 3 rounds of 10 s
    python bench/compare.py --duration 5 --latency 0.02 --rounds 5
    python bench/compare.py --workers 2              # both sides on every core: --workers 2, Mesh's serve.fork: 2
    python bench/mesh.py                             # only install Mesh (npm ci into bench/.mesh/)

Needs wrk (``apt-get install wrk``) and Node.js with npm (Node 20 works); Mesh is installed on first use from the
pinned ``bench/mesh/package-lock.json`` (:mod:`mesh`). Everything listens on 127.0.0.1.

It starts the demo departments (bench/departments.py, each answering after ``--latency``), then OneWindow
(``onewindow serve`` on the open data-plane configuration of bench/run.py) and Mesh (``mesh start``, its openapi
handler over hrss and its soap handler over public_security and civil_affairs), and drives each workload with wrk
in rounds taken in turns — OneWindow, Mesh, OneWindow, Mesh, ... — so that other work on the machine falls on
both alike:

a. ``person``: one person's social insurance (hrss, REST) over distinct ID numbers, caches off;
b. ``fanout``: name (public_security, SOAP 1.1) + marital status (civil_affairs, SOAP 1.2) + social insurance
   (hrss, REST) over distinct ID numbers, caches off; ``marriage_insurance`` is the same without the name;
c. ``cache_hit``: workload a over 100 hot ID numbers with the caches on (OneWindow's ``memory://`` cache, Mesh's
   response cache plugin on its in-memory LRU store; 60 s time to live on both), warmed before every round.

Before anything is timed each side must answer the first and last request of the workload correctly: status 200,
data, no errors, and every value the workload asks for present (Mesh's SOAP handler answers a SOAP fault with a
null and no error; timing that would report a gateway that does no work). A workload one side cannot answer is
reported with the reason and not timed.

For each workload it prints both sides' median requests per second, p99 latency and gateway CPU per request (the
gateway process's user + system CPU time over the timed window divided by the requests wrk sent), their ratios
(OneWindow / Mesh) and each gateway's RSS after the workload's load; results go to ``bench/results/mesh.json``,
``bench/results/mesh.md`` and ``bench/results/mesh.png`` (``mesh-workers-N.*`` with ``--workers N``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import department_calls, lua, require_data, tree_cpu_seconds, tree_rss_mb, wrk
from mesh import MeshQueries, body, install, mesh_gateway
from plot import NOISY_LOAD, plot_ratios
from run import RESULTS, data_plane_config, demo_departments, gateway_env, onewindow_gateway

SIDES = ("onewindow", "mesh")
_NAMES = {"onewindow": "OneWindow", "mesh": "Mesh"}
GOAL = 1.5
"""OneWindow's goal against Mesh: 1.5 × its throughput (and at most 1/1.5 of its p99 and CPU per request)."""
HOT_KEYS = 100

PERSON = "query($id: IdNumber!) { person(idNumber: $id) { socialInsurance { insured contributionMonths city } } }"
FANOUT = "query($id: IdNumber!) { person(idNumber: $id) { name maritalStatus socialInsurance { insured } } }"
MARRIAGE_INSURANCE = "query($id: IdNumber!) { person(idNumber: $id) { maritalStatus socialInsurance { insured } } }"


@dataclass(frozen=True)
class Side:
    """One gateway as a workload sees it: its request bodies and the answer's values that must not be null."""

    bodies: list[str]
    values: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    cache: bool
    sides: dict[str, Side]


def _onewindow_body(query: str, id_number: str) -> str:
    return json.dumps({"query": query, "variables": {"id": id_number}}, ensure_ascii=False)


def _workloads(queries: MeshQueries, persons: Sequence[str]) -> list[Workload]:
    def sides(onewindow: str, ow_values: tuple[str, ...], mesh: str, mesh_values: tuple[str, ...], keys: Any) -> Any:
        return {
            "onewindow": Side([_onewindow_body(onewindow, k) for k in keys], ow_values),
            "mesh": Side([body(mesh, k) for k in keys], mesh_values),
        }

    person_ow = ("person.socialInsurance.insured", "person.socialInsurance.contributionMonths")
    person_mesh = ("insurance.insured", "insurance.months")
    return [
        Workload(
            "person",
            f"one person's social insurance (REST), {len(persons)} distinct ID numbers, cache off",
            False,
            sides(PERSON, person_ow, queries.person, person_mesh, persons),
        ),
        Workload(
            "fanout",
            f"name (SOAP 1.1) + marital status (SOAP 1.2) + social insurance (REST), {len(persons)} distinct "
            "ID numbers, cache off",
            False,
            sides(
                FANOUT,
                ("person.name", "person.maritalStatus", "person.socialInsurance.insured"),
                queries.fanout,
                ("person.Person.XM", "marriage.MarriageRecord.MarriageStatus", "insurance.insured"),
                persons,
            ),
        ),
        Workload(
            "marriage_insurance",
            f"marital status (SOAP 1.2) + social insurance (REST), {len(persons)} distinct ID numbers, cache off",
            False,
            sides(
                MARRIAGE_INSURANCE,
                ("person.maritalStatus", "person.socialInsurance.insured"),
                queries.marriage_insurance,
                ("marriage.MarriageRecord.MarriageStatus", "insurance.insured"),
                persons,
            ),
        ),
        Workload(
            "cache_hit",
            f"workload a over {HOT_KEYS} hot ID numbers, cache on (warmed before every round)",
            True,
            sides(PERSON, person_ow, queries.person, person_mesh, persons[:HOT_KEYS]),
        ),
    ]


def _value(document: Any, path: str) -> Any:
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document


def _wrong_answer(url: str, side: Side) -> str | None:
    """Why ``url`` does not answer ``side`` correctly, or None: require_data's check, then every asked value."""
    try:
        require_data(url, side.bodies)
    except RuntimeError as exc:
        return str(exc)
    for request in dict.fromkeys((side.bodies[0], side.bodies[-1])):
        answer = httpx.post(f"{url}/graphql", content=request, headers={"Content-Type": "application/json"}).json()
        missing = [path for path in side.values if _value(answer["data"], path) is None]
        if missing:
            return f"no {', '.join(missing)} in {json.dumps(answer, ensure_ascii=False)[:300]}"
    return None


def _warm(url: str, bodies: Sequence[str], connections: int) -> None:
    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(lambda b: require_data(url, [b]), bodies))


def _timed_round(
    url: str, pid: int, script: Path, args: argparse.Namespace, stats_urls: Mapping[str, str]
) -> dict[str, Any]:
    before, cpu_before = department_calls(stats_urls), tree_cpu_seconds(pid)
    figures = wrk(url, script, duration=args.duration, connections=args.connections, threads=args.threads)
    cpu = tree_cpu_seconds(pid) - cpu_before
    after = department_calls(stats_urls)
    requests = max(figures["requests"], 1)
    figures["cpu_ms_per_request"] = round(cpu * 1000 / requests, 3)
    figures["department_calls_per_request"] = round(sum(after[d] - before[d] for d in after) / requests, 3)
    return figures


def _run(
    workload: Workload,
    gateways: Mapping[str, tuple[str, int]],
    args: argparse.Namespace,
    tmp: Path,
    stats_urls: Mapping[str, str],
) -> dict[str, Any]:
    result: dict[str, Any] = {"title": workload.title, "cache": workload.cache}
    for name in SIDES:
        reason = _wrong_answer(gateways[name][0], workload.sides[name])
        if reason is not None:
            if name == "onewindow":
                raise RuntimeError(f"OneWindow does not answer {workload.name} correctly: {reason}")
            result["not_timed"] = f"{_NAMES[name]} does not answer it correctly: {reason}"
            print(f"{workload.name:>18}: not timed, {result['not_timed']}", file=sys.stderr)
            return result
    scripts = {name: lua(workload.sides[name].bodies, tmp / f"{workload.name}-{name}.lua") for name in SIDES}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in SIDES}
    for turn in range(args.rounds):
        for name in SIDES:
            url, pid = gateways[name]
            if workload.cache:  # refill whatever expired: the rounds measure hits
                _warm(url, workload.sides[name].bodies, args.connections)
            figures = _timed_round(url, pid, scripts[name], args, stats_urls)
            rounds[name].append(figures)
            print(
                f"{workload.name:>18} round {turn + 1} {name:>9}: {figures['rps']:7.0f} req/s  "
                f"p99 {figures['p99_ms']:6.1f} ms  CPU {figures['cpu_ms_per_request']:.2f} ms/req"
            )
    for name in SIDES:
        runs = rounds[name]
        result[name] = {
            key: round(statistics.median(r[key] for r in runs), 3)
            for key in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "department_calls_per_request")
        }
        result[name]["non_2xx"] = sum(r["non_2xx"] for r in runs)
        result[name]["rss_mb_after"] = round(tree_rss_mb(gateways[name][1]), 1)
        result[name]["rounds"] = runs
    ow, mesh = result["onewindow"], result["mesh"]
    result["ratios"] = {  # OneWindow / Mesh
        "rps": round(ow["rps"] / mesh["rps"], 3),
        "p99": round(ow["p99_ms"] / mesh["p99_ms"], 3),
        "cpu_per_request": round(ow["cpu_ms_per_request"] / mesh["cpu_ms_per_request"], 3),
    }
    return result


def _persons() -> list[str]:
    """Every person the departments hold with a social insurance record: each request finds data on both sides."""
    from demo.data import build_dataset

    return [p.id_number for p in build_dataset().persons if p.social_insurance is not None]


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.0, help="each department's latency, seconds")
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per gateway and workload (medians reported)")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes per gateway: OneWindow's --workers, Mesh's serve.fork (CPU and RSS summed over them)",
    )
    parser.add_argument(
        "--mesh-fork", type=int, help="Mesh's serve.fork when it should differ from --workers (1: one process)"
    )
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/13", help="OneWindow's shared cache and rate limits with --workers"
    )
    parser.add_argument("--only", nargs="+", metavar="WORKLOAD", help="person, fanout, marriage_insurance, cache_hit")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    install()  # before anything is started: npm ci takes a while the first time
    mesh_fork = args.workers if args.mesh_fork is None else args.mesh_fork
    persons = _persons()
    machine_start = {"uptime": _uptime(), "load_average_1m": round(os.getloadavg()[0], 2)}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="onewindow-compare-") as tmp_name:
        tmp = Path(tmp_name)
        with demo_departments(args.latency, tmp) as (variables, stats_urls):
            # Workers share their cache and rate limit counters through Redis (onewindow serve refuses memory://).
            config = data_plane_config(tmp, shared=args.redis if args.workers > 1 else None)
            for cache in (False, True):
                with ExitStack() as stack:
                    gateways = {
                        "onewindow": stack.enter_context(
                            onewindow_gateway(config, gateway_env(variables, tmp, cache=cache), workers=args.workers)
                        ),
                        "mesh": stack.enter_context(mesh_gateway(variables, cache=cache, fork=mesh_fork)),
                    }
                    queries = MeshQueries.introspect(gateways["mesh"][0])
                    for workload in _workloads(queries, persons):
                        if workload.cache == cache and (args.only is None or workload.name in args.only):
                            results[workload.name] = _run(workload, gateways, args, tmp, stats_urls)
    report = {
        "machine": {
            "python": platform.python_version(),
            "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "start": machine_start,
            "end": {"uptime": _uptime(), "load_average_1m": round(os.getloadavg()[0], 2)},
        },
        "settings": {
            "latency_s": args.latency,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "threads": args.threads,
            "workers": args.workers,
            "mesh_fork": mesh_fork,
            "persons": len(persons),
            "hot_keys": HOT_KEYS,
            "mesh": _mesh_versions(),
            "goal": GOAL,
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "mesh" if args.workers == 1 else f"mesh-workers-{args.workers}"
    if mesh_fork != args.workers:
        stem += f"-mesh-fork-{mesh_fork}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / f"{stem}.md").write_text(_markdown(report), encoding="utf-8")
    plot_ratios(report, args.out / f"{stem}.png")
    print(_markdown(report))
    return 0


def _mesh_versions() -> dict[str, str]:
    lock = json.loads((Path(__file__).parent / "mesh" / "package-lock.json").read_text())
    return {
        name.removeprefix("node_modules/"): meta["version"]
        for name, meta in lock["packages"].items()
        if name.startswith("node_modules/@graphql-mesh/") or name.startswith("node_modules/@omnigraph/")
        if name.count("node_modules/") == 1
    }


def _rps(side: dict[str, Any]) -> list[str]:
    return [f"{r['rps']:.0f}" for r in side["rounds"]]


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def _markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    mesh = s["mesh"]
    workers, mesh_fork = s.get("workers", 1), s.get("mesh_fork", s.get("workers", 1))
    lines = [
        "# OneWindow against GraphQL Mesh",
        "",
        "```",
        "python bench/compare.py                    # 0 ms departments, 10 connections, 3 rounds of 10 s per gateway",
        f"python bench/compare.py --latency {s['latency_s']:g} --duration {s['duration_s']} --rounds {s['rounds']} "
        f"--connections {s['connections']}"
        + (f" --workers {workers}" if workers > 1 else "")
        + (f" --mesh-fork {mesh_fork}" if mesh_fork != workers else "")
        + "   # this run",
        "```",
        "",
        f"Departments at {s['latency_s'] * 1000:.0f} ms latency, {s['connections']} connections, {s['rounds']} "
        f"interleaved rounds of {s['duration_s']} s per gateway and workload (OneWindow, Mesh, OneWindow, ...), "
        f"medians; Python {m['python']}, Node {m['node']}, {m['cpus']} CPUs. GraphQL Mesh: "
        f"@graphql-mesh/cli {mesh.get('@graphql-mesh/cli')}, openapi {mesh.get('@graphql-mesh/openapi')}, "
        f"soap {mesh.get('@graphql-mesh/soap')} (@omnigraph/soap {mesh.get('@omnigraph/soap')}), "
        f"plugin-response-cache {mesh.get('@graphql-mesh/plugin-response-cache')}; "
        + (
            "one process each."
            if workers == mesh_fork == 1
            else f"OneWindow in {workers} process(es) (`--workers {workers}`), Mesh in {mesh_fork} "
            f"(`serve.fork: {mesh_fork if mesh_fork > 1 else 'false'}`); CPU and RSS summed over each side's processes."
        ),
        "",
        f"Machine load: `{m['start']['uptime']}` at the start, `{m['end']['uptime']}` at the end.",
        "",
        *(
            [
                f"**Noisy figures:** other work shared these {m['cpus']} CPUs during the run (load average "
                f"{m['start']['load_average_1m']} → {m['end']['load_average_1m']}); the rounds below spread widely. "
                "Take the final figures on a quiet machine.",
                "",
            ]
            if max(m["start"]["load_average_1m"], m["end"]["load_average_1m"]) >= NOISY_LOAD
            else []
        ),
        "Ratios are OneWindow / Mesh: above 1 is better for req/s, below 1 is better for p99 and CPU per request. "
        f"The goal is {GOAL} × Mesh's req/s. CPU is the gateway's user + system time (every process of it) over "
        "the timed window divided by the requests sent; RSS (every process of it) is read after the workload's last "
        "round.",
        "",
        "| workload | req/s OW | req/s Mesh | ratio | p99 ms OW | p99 ms Mesh | ratio | CPU ms/req OW | "
        "CPU ms/req Mesh | ratio | RSS MB OW | RSS MB Mesh | dept calls/req OW, Mesh |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for name, r in report["results"].items():
        if "not_timed" in r:
            lines.append(f"| {name} | not timed (see below) |" + " |" * 12)
            notes.append(f"- **{name}** ({r['title']}) was not timed: {r['not_timed']}")
            continue
        ow, me, ratio = r["onewindow"], r["mesh"], r["ratios"]
        lines.append(
            f"| {name} | {_fmt(ow['rps'], 0)} | {_fmt(me['rps'], 0)} | **{_fmt(ratio['rps'], 2)}** | "
            f"{_fmt(ow['p99_ms'])} | {_fmt(me['p99_ms'])} | {_fmt(ratio['p99'], 2)} | "
            f"{_fmt(ow['cpu_ms_per_request'], 2)} | {_fmt(me['cpu_ms_per_request'], 2)} | "
            f"{_fmt(ratio['cpu_per_request'], 2)} | {ow['rss_mb_after']} | {me['rss_mb_after']} | "
            f"{ow['department_calls_per_request']}, {me['department_calls_per_request']} |"
        )
        errors = {side: r[side]["non_2xx"] for side in SIDES if r[side]["non_2xx"]}
        if errors:
            notes.append(f"- **{name}**: non-2xx answers during the timed rounds: {errors}")
    spread = [
        f"- `{name}`: OneWindow {', '.join(_rps(r['onewindow']))}; Mesh {', '.join(_rps(r['mesh']))}"
        for name, r in report["results"].items()
        if "ratios" in r
    ]
    lines += ["", "Requests per second in each round, in the order taken:", "", *spread]
    lines += ["", "Workloads:", ""]
    lines += [f"- `{name}`: {r['title']}" for name, r in report["results"].items()]
    if notes:
        lines += ["", *notes]
    lines += ["", "About Mesh:", "", *_MESH_NOTES]
    return "\n".join(lines) + "\n"


_MESH_NOTES = (
    "- Its SOAP handler (@graphql-mesh/soap 0.17.20 on @omnigraph/soap 0.4.19: the newest versions the npm "
    "registry offered this machine) sends every call in a SOAP 1.2 envelope (`application/soap+xml`, no "
    "SOAPAction); so does @omnigraph/soap 0.96.0, the newest offered. civil_affairs speaks SOAP 1.2 "
    "and answers; public_security's household registry speaks SOAP 1.1 and answers with a VersionMismatch fault, "
    "which Mesh turns into `null` with no error. So Mesh cannot answer `fanout` (the person's name); "
    "`marriage_insurance` is the fan-out both can answer.",
    "- Mesh has no unified person: a fan-out is one root field per department, each given the ID number, and Mesh "
    "runs them concurrently. OneWindow resolves one `person` and maps the departments' codes (marital status, "
    'insured flag) to the unified model; Mesh passes them through (`MarriageStatus: "30"`, `insured: "_1"`).',
    "- Mesh runs with `NODE_ENV=production`, with `serve.fork: false` (one process, like `onewindow serve`) or, with "
    "`--workers N`, `serve.fork: N` (a node cluster, as `onewindow serve --workers N` starts N processes). Its "
    "response cache (`plugins: [responseCache: {ttl: 60000}]`) keeps whole responses in its in-memory LRU store; "
    "OneWindow's cache keeps department records (`memory://`, Redis with `--workers`; ttl 60s).",
    "- Both gateways and the departments (one Python process) share the machine with wrk: at 0 ms latency the "
    "departments' CPU counts against both sides alike.",
)


if __name__ == "__main__":
    raise SystemExit(main())
