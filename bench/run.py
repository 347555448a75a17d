"""OneWindow's benchmark: the gateway against the demo departments, as ratios to a bare Starlette floor.

    python bench/run.py                       # 20 ms departments, 10 s per scenario, 10 connections
    python bench/run.py --duration 5 --latency 0.05

It starts three processes -- the demo departments (each answering after ``--latency``), the gateway on the demo
configuration, and a bare Starlette app that returns a fixed GraphQL-shaped JSON answer (the *floor*: what the
same HTTP stack costs with no gateway work) -- and drives each scenario with wrk (``apt-get install wrk``):

a. ``person``: one person's social insurance (one REST department), over distinct ID numbers;
b. ``fanout``: one person's name, marital status, social insurance and degrees (SOAP + SOAP + REST + SQL);
c. ``cases``: 100 cases with their applicants' names.

For every scenario it prints requests per second, p50 and p99 latency, the ratio of its throughput to the floor's
measured in the same run, and the department calls per client request (read from the departments' counters).
Results go to ``bench/results/latest.json`` and ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEMO_CONFIG = ROOT / "demo" / "onewindow.yaml"

PERSON_QUERY = "query($id: IdNumber!) { person(idNumber: $id) { socialInsurance { insured contributionMonths city } } }"
FANOUT_QUERY = (
    "query($id: IdNumber!) { person(idNumber: $id) { name maritalStatus socialInsurance { insured } "
    "degrees { degree school } } }"
)
CASES_QUERY = (
    "{ cases(first: 100) { edges { node { caseNumber status applicant { "
    "... on Person { name } ... on LegalEntity { name } } } } } }"
)

_LUA = """
local bodies = {%s}
local n = 0
request = function()
  n = n %% #bodies + 1
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, bodies[n])
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


@contextmanager
def _process(args: Sequence[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _lua(bodies: Sequence[str], path: Path) -> Path:
    quoted = ",".join("[==[" + b + "]==]" for b in bodies)
    path.write_text(_LUA % quoted, encoding="utf-8")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(text)
    return float(match[1]) * _UNITS[match[2]]


def _wrk(url: str, script: Path, *, duration: int, connections: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out)[1])  # type: ignore[index]
    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": total, "non_2xx": int(errors[1]) if errors else 0}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _department_calls(stats_urls: dict[str, str]) -> dict[str, int]:
    return {name: int(httpx.get(url, timeout=5).json()["total"]) for name, url in stats_urls.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.02, help="each department's latency, seconds")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--persons", type=int, default=10_000, help="distinct ID numbers in scenario a")
    parser.add_argument("--soak", type=int, default=60, help="seconds of mixed load before RSS is read")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2

    from demo.data import build_dataset
    from gateway.keys import id_number_check_char

    dataset = build_dataset()
    known = [p.id_number for p in dataset.persons]
    held = set(known)
    distinct = list(known)
    serial = 0
    while len(distinct) < args.persons:  # further valid ID numbers (born in 1990) the departments do not hold
        day, sequence = divmod(serial, 1000)
        body = f"6501021990{1 + day // 28:02d}{1 + day % 28:02d}{sequence:03d}"
        serial += 1
        candidate = body + id_number_check_char(body)
        if candidate not in held:
            distinct.append(candidate)

    with tempfile.TemporaryDirectory(prefix="onewindow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        variables_file = tmp / "variables.json"
        with _process(
            [
                sys.executable,
                str(ROOT / "bench" / "departments.py"),
                "--latency",
                str(args.latency),
                "--data-dir",
                str(tmp),
                "--variables",
                str(variables_file),
            ]
        ):
            deadline = time.monotonic() + 120
            while not variables_file.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("demo departments did not start")
                time.sleep(0.1)
            variables: dict[str, str] = json.loads(variables_file.read_text())
            stats_urls = json.loads(variables.pop("__stats__"))
            gateway_port, floor_port = _free_port(), _free_port()
            env = {
                **os.environ,
                **variables,
                "ONEWINDOW_LOG_LEVEL": "warning",
                "ONEWINDOW_ACCESS_LOG": "false",
                "DEMO_RATE_LIMIT": "1000000/second",
                "DEMO_CACHE": "false",
            }
            gateway = f"http://127.0.0.1:{gateway_port}"
            floor = f"http://127.0.0.1:{floor_port}"
            with _process(
                [sys.executable, "-m", "gateway", "serve", str(DEMO_CONFIG), "--port", str(gateway_port)], env=env
            ) as gateway_process:
                _wait_http(f"{gateway}/healthz")
                sample = httpx.post(
                    f"{gateway}/graphql", json={"query": PERSON_QUERY, "variables": {"id": known[0]}}, timeout=10
                ).text
                (tmp / "floor.json").write_text(sample, encoding="utf-8")
                with _process(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "floor.py"),
                        "--port",
                        str(floor_port),
                        "--body",
                        str(tmp / "floor.json"),
                    ]
                ):
                    _wait_http(f"{floor}/graphql")
                    results = _run_scenarios(
                        args, tmp, gateway, floor, stats_urls, distinct, known, gateway_process.pid
                    )
                    cached_port = _free_port()
                    cached = f"http://127.0.0.1:{cached_port}"
                    cached_env = {**env, "DEMO_CACHE": "true"}
                    with _process(
                        [sys.executable, "-m", "gateway", "serve", str(DEMO_CONFIG), "--port", str(cached_port)],
                        env=cached_env,
                    ) as cached_process:
                        _wait_http(f"{cached}/healthz")
                        results |= _run_cache_scenarios(
                            args, tmp, cached, stats_urls, known, cached_process.pid, results["floor"]["rps"]
                        )
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {
            "latency_s": args.latency,
            "duration_s": args.duration,
            "connections": args.connections,
            "soak_s": args.soak,
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "latest.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


def _run_scenarios(
    args: argparse.Namespace,
    tmp: Path,
    gateway: str,
    floor: str,
    stats_urls: dict[str, str],
    distinct: Sequence[str],
    known: Sequence[str],
    gateway_pid: int,
) -> dict[str, Any]:
    def body(query: str, key: str | None = None) -> str:
        return json.dumps({"query": query, "variables": {"id": key} if key else {}}, ensure_ascii=False)

    fanout = [body(FANOUT_QUERY, k) for k in known]
    # name: (url, request bodies, connections); "fanout_1" is one client at a time: latency without queueing
    scenarios = {
        "floor": (floor, [body(PERSON_QUERY, known[0])], args.connections),
        "person": (gateway, [body(PERSON_QUERY, k) for k in distinct[: args.persons]], args.connections),
        "fanout": (gateway, fanout, args.connections),
        "fanout_1": (gateway, fanout, 1),
        "cases": (gateway, [body(CASES_QUERY)], args.connections),
    }
    for _, bodies, _ in scenarios.values():  # every body must be a valid request, or the figures lie
        for sample in (bodies[0], bodies[-1]):
            answer = httpx.post(f"{gateway}/graphql", content=sample, headers={"Content-Type": "application/json"})
            if "BAD_USER_INPUT" in answer.text:
                raise RuntimeError(f"benchmark body refused: {sample[:200]}")
    results: dict[str, Any] = {}
    for name, (url, bodies, connections) in scenarios.items():
        script = _lua(bodies, tmp / f"{name}.lua")
        before = _department_calls(stats_urls)
        cpu_before = _cpu_seconds(gateway_pid)
        threads = min(args.threads, connections)
        figures = _wrk(url, script, duration=args.duration, connections=connections, threads=threads)
        figures["connections"] = connections
        cpu = _cpu_seconds(gateway_pid) - cpu_before
        after = _department_calls(stats_urls)
        if url == gateway:
            figures["gateway_cpu_ms_per_request"] = round(cpu * 1000 / max(figures["requests"], 1), 2)
        calls = {d: after[d] - before[d] for d in after if after[d] != before[d]}
        figures["department_calls_per_request"] = round(sum(calls.values()) / max(figures["requests"], 1), 3)
        figures["department_calls"] = calls
        results[name] = figures
        print(f"{name:>8}: {figures['rps']:.0f} req/s  p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms")
    floor_rps = results["floor"]["rps"]
    for figures in results.values():
        figures["ratio_to_floor"] = round(figures["rps"] / floor_rps, 4)
    for name in ("fanout", "fanout_1"):
        results[name]["p50_as_multiple_of_latency"] = round(results[name]["p50_ms"] / (args.latency * 1000), 2)
    return results


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _run_cache_scenarios(
    args: argparse.Namespace,
    tmp: Path,
    gateway: str,
    stats_urls: dict[str, str],
    known: Sequence[str],
    pid: int,
    floor_rps: float,
) -> dict[str, Any]:
    """The cache gateway: the hit path against the floor, calls per request with overlapping keys, RSS under load."""

    def body(query: str, key: str) -> str:
        return json.dumps({"query": query, "variables": {"id": key}}, ensure_ascii=False)

    results: dict[str, Any] = {}
    warm = known[:1000]
    for key in warm:  # fill the cache: the hit path is what is measured next
        httpx.post(f"{gateway}/graphql", content=body(PERSON_QUERY, key), headers={"Content-Type": "application/json"})

    def run(name: str, bodies: Sequence[str], duration: int) -> dict[str, Any]:
        script = _lua(bodies, tmp / f"{name}.lua")
        before = _department_calls(stats_urls)
        figures = _wrk(gateway, script, duration=duration, connections=args.connections, threads=args.threads)
        after = _department_calls(stats_urls)
        figures["connections"] = args.connections
        figures["department_calls"] = {d: after[d] - before[d] for d in after if after[d] != before[d]}
        total = sum(figures["department_calls"].values())
        figures["department_calls_per_request"] = round(total / max(figures["requests"], 1), 4)
        figures["ratio_to_floor"] = round(figures["rps"] / floor_rps, 4)
        print(f"{name:>8}: {figures['rps']:.0f} req/s  p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms")
        return figures

    results["cache_hit"] = run("cache_hit", [body(PERSON_QUERY, k) for k in warm], args.duration)
    # 200 persons not asked before, requested over and over by 10 connections: a cold start with overlapping keys
    overlapping = known[1000:1200]
    results["overlap"] = run("overlap", [body(FANOUT_QUERY, k) for k in overlapping], args.duration)
    mixed = [body(FANOUT_QUERY, k) for k in known] + [body(PERSON_QUERY, k) for k in known]
    results["soak"] = run("soak", mixed, args.soak)
    results["soak"]["rss_mb_after"] = round(_rss_mb(pid), 1)
    return results


def _markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"Departments at {s['latency_s'] * 1000:.0f} ms latency, {s['connections']} connections, "
        f"{s['duration_s']} s per scenario; Python {report['machine']['python']}, {report['machine']['cpus']} CPUs.",
        "",
        "| scenario | req/s | p50 ms | p99 ms | ratio to floor | department calls / request | gateway CPU ms / req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in report["results"].items():
        lines.append(
            f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['ratio_to_floor']:.3f} | "
            f"{r['department_calls_per_request']} | {r.get('gateway_cpu_ms_per_request', '')} |"
        )
    r = report["results"]
    lines += [
        "",
        f"Fan-out (SOAP + SOAP + REST + SQL) p50 = {r['fanout_1']['p50_as_multiple_of_latency']} × one department's "
        f"latency with one client, {r['fanout']['p50_as_multiple_of_latency']} × with {s['connections']} "
        "(the gateway process is then CPU-bound).",
    ]
    if "soak" in r:
        lines += [
            "",
            f"Cache: the hit path runs at {r['cache_hit']['ratio_to_floor']:.2f} × the floor; with overlapping keys "
            f"{r['overlap']['department_calls_per_request']} department calls per client request; "
            f"RSS after {report['settings'].get('soak_s', 60)} s of mixed load: {r['soak']['rss_mb_after']} MB.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
