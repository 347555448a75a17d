"""Gateway CPU per request on a cache miss, and where it goes: the cache-miss workloads, each timed, then profiled.

    python bench/cpu_profile.py                               # every workload, 3 rounds of 5 s, then a 5 s profile
    python bench/cpu_profile.py --only cases --rounds 1 --profile-seconds 5 --out /tmp/prof

It starts the demo departments at 0 ms latency and one gateway on the open data-plane configuration of bench/run.py
(cache off), under bench/profiled_gateway.py. For each workload it runs ``--rounds`` wrk windows and reads the
gateway process's user + system CPU time over each (from /proc): the CPU per request is that time over the requests
wrk completed, the median of the rounds. Then one more window with cProfile switched on in the gateway (thread CPU
time, the serving thread only: the aiosqlite worker threads are not in it) and asyncio's task factory counting:
own time grouped by package, the costliest functions, and asyncio tasks per request.

Workloads (``person``, ``fanout`` and ``cases`` are bench/run.py's; ``rest_soap`` is bench/compare.py's fan-out):

- ``person``: one person's social insurance (REST);
- ``rest_soap``: name (SOAP 1.1) + marital status (SOAP 1.2) + social insurance (REST);
- ``fanout``: the same and degrees (SQL);
- ``cases``: 100 cases with their applicants' names.

Results go to ``<out>/profile.json`` and ``<out>/profile.md``; the pstats files stay beside them
(``profile-<workload>.pstats``, for ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compare import FANOUT as REST_SOAP
from harness import ROOT, cpu_seconds, department_calls, free_port, lua, process, require_data, wait_http, wrk
from run import (
    CASES_QUERY,
    FANOUT_QUERY,
    PERSON_QUERY,
    RESULTS,
    _body,
    data_plane_config,
    demo_departments,
    gateway_env,
    id_numbers,
)

WORKLOADS = ("person", "rest_soap", "fanout", "cases")


def _bodies(name: str, known: Sequence[str], distinct: Sequence[str]) -> list[str]:
    insured = _insured()
    if name == "person":
        return [_body(PERSON_QUERY, k) for k in distinct]
    if name == "rest_soap":
        return [_body(REST_SOAP, k) for k in insured]
    if name == "fanout":
        return [_body(FANOUT_QUERY, k) for k in known]
    return [_body(CASES_QUERY)]


def _insured() -> list[str]:
    from demo.data import build_dataset

    return [p.id_number for p in build_dataset().persons if p.social_insurance is not None]


@contextmanager
def profiled_gateway(config: Path, env: Mapping[str, str], out: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    script = str(ROOT / "bench" / "profiled_gateway.py")
    args = [sys.executable, script, "serve", str(config), "--port", str(port)]
    with process(args, env={**env, "ONEWINDOW_PROFILE_OUT": str(out)}) as proc:
        wait_http(f"{url}/healthz")
        yield url, proc.pid


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _group(filename: str) -> str:
    """The package a profiled function belongs to."""
    if filename == "~":
        return "C builtins"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0].removesuffix(".py")
    root = str(ROOT)
    if filename.startswith(root):
        rel = path.relative_to(ROOT).parts
        return f"onewindow/{rel[0]}" if len(rel) > 1 else "onewindow"
    if "python3" in filename:
        stdlib = [p for p in parts if p.startswith("python3")]
        after = parts[parts.index(stdlib[-1]) + 1 :]
        return f"stdlib/{after[0].removesuffix('.py')}" if after else "stdlib"
    return filename


def summarize(stats_path: Path, requests: int, top: int = 30) -> dict[str, Any]:
    stats = pstats.Stats(str(stats_path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    groups: dict[str, float] = defaultdict(float)
    total = 0.0
    functions = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        groups[_group(filename)] += tottime
        total += tottime
        functions.append((tottime, cumtime, ncalls, f"{_group(filename)}:{Path(filename).name}:{line}({name})"))
    per = 1000 / max(requests, 1)
    functions.sort(reverse=True)
    return {
        "profiled_ms_per_request": round(total * per, 3),
        "groups_ms_per_request": {
            g: round(t * per, 3) for g, t in sorted(groups.items(), key=lambda kv: -kv[1]) if t * per >= 0.005
        },
        "top_functions": [
            {
                "function": label,
                "own_ms_per_request": round(tt * per, 4),
                "cum_ms_per_request": round(ct * per, 4),
                "calls_per_request": round(n / max(requests, 1), 2),
            }
            for tt, ct, n, label in functions[:top]
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile-seconds", type=int, default=5, help="seconds of the profiled window (0: none)")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=WORKLOADS)
    parser.add_argument("--label", default="", help="a name for this run in the report (e.g. a commit)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    known, distinct = id_numbers(10_000)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"label": args.label, "start": _uptime(), "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="onewindow-profile-") as tmp_name:
        tmp = Path(tmp_name)
        with demo_departments(0.0, tmp) as (variables, stats_urls):
            config = data_plane_config(tmp)
            stats_file = tmp / "profile.pstats"
            with profiled_gateway(config, gateway_env(variables, tmp, cache=False), stats_file) as (url, pid):
                for name in args.only or WORKLOADS:
                    bodies = _bodies(name, known, distinct)
                    require_data(url, bodies)
                    script = lua(bodies, tmp / f"{name}.lua")
                    wrk(url, script, duration=1, connections=args.connections, threads=args.threads)  # warm-up
                    rounds = []
                    for _ in range(args.rounds):
                        cpu, calls = cpu_seconds(pid), department_calls(stats_urls)
                        figures = wrk(
                            url, script, duration=args.duration, connections=args.connections, threads=args.threads
                        )
                        cpu = cpu_seconds(pid) - cpu
                        after = department_calls(stats_urls)
                        requests = max(figures["requests"], 1)
                        rounds.append(
                            {
                                "cpu_ms_per_request": round(cpu * 1000 / requests, 3),
                                "rps": figures["rps"],
                                "p99_ms": figures["p99_ms"],
                                "department_calls_per_request": round(
                                    sum(after[d] - calls[d] for d in after) / requests, 3
                                ),
                                "load_1m": round(os.getloadavg()[0], 2),
                            }
                        )
                        print(f"{name:>10}: {rounds[-1]}", flush=True)
                    result: dict[str, Any] = {
                        "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in rounds),
                        "rounds": rounds,
                    }
                    if args.profile_seconds:
                        os.kill(pid, signal.SIGUSR1)
                        time.sleep(0.2)
                        figures = wrk(
                            url,
                            script,
                            duration=args.profile_seconds,
                            connections=args.connections,
                            threads=args.threads,
                        )
                        os.kill(pid, signal.SIGUSR2)
                        deadline = time.monotonic() + 30
                        tasks_file = Path(f"{stats_file}.tasks")
                        while not tasks_file.exists() and time.monotonic() < deadline:
                            time.sleep(0.1)
                        time.sleep(0.5)
                        kept = args.out / f"profile-{name}.pstats"
                        kept.write_bytes(stats_file.read_bytes())
                        requests = max(figures["requests"], 1)
                        result["profile"] = summarize(stats_file, requests)
                        result["profile"]["tasks_per_request"] = round(int(tasks_file.read_text()) / requests, 2)
                        tasks_file.unlink()
                        stats_file.unlink()
                        print(json.dumps(result["profile"], indent=1)[:3000], flush=True)
                    report["workloads"][name] = result
    report["end"] = _uptime()
    (args.out / "profile.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "profile.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Gateway CPU per request on a cache miss{' — ' + report['label'] if report['label'] else ''}",
        "",
        f"Load: `{report['start']}` at the start, `{report['end']}` at the end.",
        "",
        "| workload | CPU ms/req (median) | rounds | tasks/req (profiled) |",
        "| --- | ---: | --- | ---: |",
    ]
    for name, r in report["workloads"].items():
        rounds = ", ".join(f"{x['cpu_ms_per_request']:.2f} (load {x['load_1m']})" for x in r["rounds"])
        tasks = r.get("profile", {}).get("tasks_per_request", "")
        lines.append(f"| {name} | {r['cpu_ms_per_request']:.2f} | {rounds} | {tasks} |")
    for name, r in report["workloads"].items():
        if "profile" not in r:
            continue
        p = r["profile"]
        lines += ["", f"## {name}: profiled {p['profiled_ms_per_request']} ms/req (cProfile inflates it)", ""]
        lines += ["| package | own ms/req |", "| --- | ---: |"]
        lines += [f"| {g} | {t} |" for g, t in list(p["groups_ms_per_request"].items())[:15]]
        lines += ["", "| function | own ms/req | cum ms/req | calls/req |", "| --- | ---: | ---: | ---: |"]
        lines += [
            f"| `{f['function']}` | {f['own_ms_per_request']} | {f['cum_ms_per_request']} | {f['calls_per_request']} |"
            for f in p["top_functions"][:20]
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
