"""OneWindow's benchmark: the gateway against the demo departments, as ratios to a bare Starlette floor.

    python bench/run.py                       # 20 ms departments, 10 s per scenario, 10 connections
    python bench/run.py --duration 5 --latency 0.05
    python bench/run.py --only identity --out /tmp/bench-identity   # scenario e alone (no floor, a-d skipped)

It starts the demo departments (each answering after ``--latency``), gateways on the demo configuration, and a bare
Starlette app that returns a fixed GraphQL-shaped JSON answer (the *floor*: what the same HTTP stack costs with no
gateway work), and drives each scenario with wrk (``apt-get install wrk``):

a. ``person``: one person's social insurance (one REST department), over distinct ID numbers;
b. ``fanout``: one person's name, marital status, social insurance and degrees (SOAP + SOAP + REST + SQL);
c. ``cases``: 100 cases with their applicants' names;
d. with the cache on: ``cache_hit``, ``overlap`` (keys asked over and over from cold) and a mixed ``soak`` (RSS);
e. ``identity_off`` / ``identity_on`` (/ ``identity_on_pg``): scenario a, cache on, with JWT auth and the audit
   off, then on (:mod:`identity`).

Scenarios a-d measure the data plane: the gateways run on :func:`demo.variants.demo_yaml` (every field
unconditional, a service development principal) with the audit off, so the policy and the audit are left to e.
Before it is timed, every scenario must get a clean answer (data, no errors) to its first and last request: a
refusal is fast, and timing one would report a gateway that does no work.

For every scenario it prints requests per second, p50 and p99 latency, the ratio of its throughput to the floor's
measured in the same run, and the department calls per client request (read from the departments' counters).
Results go to ``bench/results/latest.json`` and ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from harness import (
    ROOT,
    cpu_seconds,
    department_calls,
    free_port,
    lua,
    process,
    require_data,
    rss_mb,
    wait_http,
    wrk,
)
from identity import TARGET_RATIO, IdentitySettings, run_identity

from demo.variants import demo_yaml

RESULTS = ROOT / "bench" / "results"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

PERSON_QUERY = "query($id: IdNumber!) { person(idNumber: $id) { socialInsurance { insured contributionMonths city } } }"
FANOUT_QUERY = (
    "query($id: IdNumber!) { person(idNumber: $id) { name maritalStatus socialInsurance { insured } "
    "degrees { degree school } } }"
)
CASES_QUERY = (
    "{ cases(first: 100) { edges { node { caseNumber status applicant { "
    "... on Person { name } ... on LegalEntity { name } } } } } }"
)


def _body(query: str, key: str | None = None) -> str:
    return json.dumps({"query": query, "variables": {"id": key} if key else {}}, ensure_ascii=False)


def _overlap_bodies(known: Sequence[str]) -> list[str]:
    """200 persons not asked before on the cache gateway, requested over and over: a cold start, overlapping keys."""
    return [_body(FANOUT_QUERY, k) for k in known[1000:1200]]


def data_plane_config(tmp: Path, *, shared: str | None = None) -> Path:
    """The demo configuration, open (every field unconditional, a service development principal), audit off.
    ``shared``: a Redis URL for the cache and the rate limit counters, as several worker processes need."""

    def edit(data: dict[str, Any]) -> None:
        data["auth"]["audit"] = None
        if shared is not None:
            data["cache"]["url"] = shared
            data["security"]["rate_limit_storage"] = shared
            data["security"]["rate_limit_key_secret"] = "bench-only-rate-limit-key-secret"

    return demo_yaml(tmp, edit=edit, name="data-plane.yaml")


def _identity_persons(args: argparse.Namespace) -> int:
    """Distinct ID numbers enough that no timed identity request finds its answer cached: each request waits for the
    department once, so a round sends at most ``connections * duration / latency`` of them; a fifth more for safety,
    times the rounds, and the two answers checked before timing."""
    per_round = math.ceil(args.connections * args.duration / args.latency * 1.2)
    return per_round * args.identity_rounds + 2


def id_numbers(count: int) -> tuple[list[str], list[str]]:
    """The persons the departments hold, and ``count`` distinct valid ID numbers starting with them."""
    from demo.data import build_dataset
    from gateway.keys import id_number_check_char

    known = [p.id_number for p in build_dataset().persons]
    held = set(known)
    distinct = list(known)
    serial = 0
    while len(distinct) < count:  # further valid ID numbers (born in 1990) the departments do not hold
        day, sequence = divmod(serial, 1000)
        body = f"6501021990{1 + day // 28:02d}{1 + day % 28:02d}{sequence:03d}"
        serial += 1
        candidate = body + id_number_check_char(body)
        if candidate not in held:
            distinct.append(candidate)
    return known, distinct


@contextmanager
def demo_departments(latency: float, tmp: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The demo departments in a process of their own: the configuration variables and each one's counter URL."""
    variables_file = tmp / "variables.json"
    script = str(ROOT / "bench" / "departments.py")
    options = ["--latency", str(latency), "--data-dir", str(tmp), "--variables", str(variables_file)]
    with process([sys.executable, script, *options]):
        deadline = time.monotonic() + 120
        while not variables_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("demo departments did not start")
            time.sleep(0.1)
        variables: dict[str, str] = json.loads(variables_file.read_text())
        stats_urls: dict[str, str] = json.loads(variables.pop("__stats__"))
        yield variables, stats_urls


def gateway_env(variables: Mapping[str, str], tmp: Path, *, cache: bool) -> dict[str, str]:
    """The environment of a benchmarked gateway: the departments' addresses, quiet logs, no rate limit."""
    return {
        **os.environ,
        **variables,
        "ONEWINDOW_LOG_LEVEL": "warning",
        "ONEWINDOW_ACCESS_LOG": "false",
        "DEMO_RATE_LIMIT": "1000000/second",
        "DEMO_CACHE": "true" if cache else "false",
        # the demo's stores default to files in the working directory: keep them in the run's own
        "DEMO_KEYS_URL": f"sqlite+aiosqlite:///{tmp / 'keys.db'}",
        "DEMO_AUDIT_URL": f"sqlite+aiosqlite:///{tmp / 'audit.db'}",
    }


@contextmanager
def onewindow_gateway(config: Path, env: Mapping[str, str], *, workers: int = 1) -> Iterator[tuple[str, int]]:
    """``onewindow serve config`` on a free port (in ``workers`` processes): its URL and process id (the
    supervisor's, with workers), once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with process(command, env=env) as proc:
        wait_http(f"{url}/healthz")
        yield url, proc.pid


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.02, help="each department's latency, seconds")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--persons",
        type=int,
        default=10_000,
        help="distinct ID numbers in scenario a (e takes as many as no cached answer needs, at least these)",
    )
    parser.add_argument("--soak", type=int, default=60, help="seconds of mixed load before RSS is read")
    parser.add_argument(
        "--audit-postgres",
        default=POSTGRES_URL,
        help="PostgreSQL for the identity_on_pg audit store, in a schema created and dropped by the run ('' skips)",
    )
    parser.add_argument("--identity-rounds", type=int, default=5, help="turns each identity gateway takes")
    parser.add_argument(
        "--only",
        choices=["identity"],
        help="run only these scenarios: identity compares its gateways with each other, so no floor is measured",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    identity_persons = max(args.persons, _identity_persons(args))
    known, distinct = id_numbers(identity_persons)
    load_at_start = round(os.getloadavg()[0], 2)

    with tempfile.TemporaryDirectory(prefix="onewindow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with demo_departments(args.latency, tmp) as (variables, stats_urls):
            env = gateway_env(variables, tmp, cache=False)
            cached_env = gateway_env(variables, tmp, cache=True)
            results: dict[str, Any] = {}
            floor_rps: float | None = None
            if args.only is None:
                results = _run_data_plane(args, tmp, env, cached_env, stats_urls, distinct, known)
                floor_rps = results["floor"]["rps"]
            settings = IdentitySettings(
                duration=args.duration,
                connections=args.connections,
                threads=args.threads,
                postgres_url=args.audit_postgres or None,
                rounds=args.identity_rounds,
            )
            person = [_body(PERSON_QUERY, k) for k in distinct[:identity_persons]]
            results |= run_identity(settings, tmp, cached_env, stats_urls, person, floor_rps=floor_rps)
    report = {
        "only": args.only,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            # other work on the machine shows here: the figures are comparable only between similar loads
            "load_average_1m": {"start": load_at_start, "end": round(os.getloadavg()[0], 2)},
        },
        "settings": {
            "latency_s": args.latency,
            "duration_s": args.duration,
            "connections": args.connections,
            "soak_s": args.soak,
            "data_plane": "open policy (demo.variants.demo_yaml), development principal, audit off",
            "identity_cache": "on: memory://, ttl 60s (the demo configuration's)",
            "identity_rounds": args.identity_rounds,
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "latest.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


_JSON = {"Content-Type": "application/json"}


def _run_data_plane(
    args: argparse.Namespace,
    tmp: Path,
    env: Mapping[str, str],
    cached_env: Mapping[str, str],
    stats_urls: dict[str, str],
    distinct: Sequence[str],
    known: Sequence[str],
) -> dict[str, Any]:
    """The floor and scenarios a-d."""
    config = data_plane_config(tmp)
    with onewindow_gateway(config, env) as (gateway, gateway_pid):
        sample = [_body(PERSON_QUERY, known[0])]
        require_data(gateway, sample)
        answer = httpx.post(f"{gateway}/graphql", content=sample[0], headers=_JSON, timeout=10).content
        (tmp / "floor.json").write_bytes(answer)
        floor_port = free_port()
        floor = f"http://127.0.0.1:{floor_port}"
        floor_args = ["--port", str(floor_port), "--body", str(tmp / "floor.json")]
        with process([sys.executable, str(ROOT / "bench" / "floor.py"), *floor_args]):
            wait_http(f"{floor}/graphql")
            results = _run_scenarios(args, tmp, gateway, floor, stats_urls, distinct, known, gateway_pid)
        # checked here, without the cache: on the cache gateway the check would warm what overlap measures
        require_data(gateway, _overlap_bodies(known))
    floor_rps = results["floor"]["rps"]
    with onewindow_gateway(config, cached_env) as (cached, cached_pid):
        results |= _run_cache_scenarios(args, tmp, cached, stats_urls, known, cached_pid, floor_rps)
    return results


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
    fanout = [_body(FANOUT_QUERY, k) for k in known]
    # name: (url, request bodies, connections); "fanout_1" is one client at a time: latency without queueing
    scenarios = {
        "floor": (floor, [_body(PERSON_QUERY, known[0])], args.connections),
        "person": (gateway, [_body(PERSON_QUERY, k) for k in distinct[: args.persons]], args.connections),
        "fanout": (gateway, fanout, args.connections),
        "fanout_1": (gateway, fanout, 1),
        "cases": (gateway, [_body(CASES_QUERY)], args.connections),
    }
    for _, bodies, _ in scenarios.values():  # every body must get a clean answer, or the figures lie
        require_data(gateway, bodies)
    results: dict[str, Any] = {}
    for name, (url, bodies, connections) in scenarios.items():
        script = lua(bodies, tmp / f"{name}.lua")
        before = department_calls(stats_urls)
        cpu_before = cpu_seconds(gateway_pid)
        threads = min(args.threads, connections)
        figures = wrk(url, script, duration=args.duration, connections=connections, threads=threads)
        figures["connections"] = connections
        cpu = cpu_seconds(gateway_pid) - cpu_before
        after = department_calls(stats_urls)
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
    results: dict[str, Any] = {}
    warm = [_body(PERSON_QUERY, k) for k in known[:1000]]
    mixed = [_body(FANOUT_QUERY, k) for k in known] + [_body(PERSON_QUERY, k) for k in known]
    # Fill the cache (the hit path is what is measured next), each answer clean. In parallel: asked one at a time
    # the thousand answers take longer than a record's ttl, and the first would expire while the hit path is timed.
    with ThreadPoolExecutor(max_workers=args.connections) as pool:
        list(pool.map(lambda body: require_data(gateway, [body]), warm))

    def run(name: str, bodies: Sequence[str], duration: int) -> dict[str, Any]:
        script = lua(bodies, tmp / f"{name}.lua")
        before = department_calls(stats_urls)
        figures = wrk(gateway, script, duration=duration, connections=args.connections, threads=args.threads)
        after = department_calls(stats_urls)
        figures["connections"] = args.connections
        figures["department_calls"] = {d: after[d] - before[d] for d in after if after[d] != before[d]}
        total = sum(figures["department_calls"].values())
        figures["department_calls_per_request"] = round(total / max(figures["requests"], 1), 4)
        figures["ratio_to_floor"] = round(figures["rps"] / floor_rps, 4)
        print(f"{name:>8}: {figures['rps']:.0f} req/s  p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms")
        return figures

    results["cache_hit"] = run("cache_hit", warm, args.duration)
    results["overlap"] = run("overlap", _overlap_bodies(known), args.duration)  # checked on the uncached gateway
    require_data(gateway, mixed)
    results["soak"] = run("soak", mixed, args.soak)
    results["soak"]["rss_mb_after"] = round(rss_mb(pid), 1)
    return results


def _markdown(report: dict[str, Any]) -> str:
    s, machine = report["settings"], report["machine"]
    load = machine.get("load_average_1m")
    lines = [
        f"Departments at {s['latency_s'] * 1000:.0f} ms latency, {s['connections']} connections, "
        f"{s['duration_s']} s per scenario; Python {machine['python']}, {machine['cpus']} CPUs"
        + (f", load average {load['start']} at the start and {load['end']} at the end." if load else "."),
        "Gateways on the demo configuration opened up (demo.variants.demo_yaml: every field unconditional, a service "
        "development principal); the audit is off except in identity_on*.",
        "",
        "| scenario | req/s | p50 ms | p99 ms | ratio to floor | department calls / request | gateway CPU ms / req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in report["results"].items():
        to_floor = f"{r['ratio_to_floor']:.3f}" if "ratio_to_floor" in r else "-"
        lines.append(
            f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {to_floor} | "
            f"{r['department_calls_per_request']} | {r.get('gateway_cpu_ms_per_request', '')} |"
        )
    r = report["results"]
    if "fanout_1" in r:
        lines += [
            "",
            f"Fan-out (SOAP + SOAP + REST + SQL) p50 = {r['fanout_1']['p50_as_multiple_of_latency']} × one "
            f"department's latency with one client, {r['fanout']['p50_as_multiple_of_latency']} × with "
            f"{s['connections']} (the gateway process is then CPU-bound).",
        ]
    if "soak" in r:
        lines += [
            "",
            f"Cache: the hit path runs at {r['cache_hit']['ratio_to_floor']:.2f} × the floor; with overlapping keys "
            f"{r['overlap']['department_calls_per_request']} department calls per client request; "
            f"RSS after {report['settings'].get('soak_s', 60)} s of mixed load: {r['soak']['rss_mb_after']} MB.",
        ]
    if "identity_on" in r:
        lines += ["", *_identity_lines(r)]
    return "\n".join(lines) + "\n"


IDENTITY_SIDES = ("identity_off", "identity_on", "identity_on_pg")
UNCACHED = 0.98
"""Department calls per request below which a side of the identity comparison was partly served from its cache."""


def _identity_lines(r: dict[str, Any]) -> list[str]:
    off, on = r["identity_off"], r["identity_on"]
    verdict = "meets" if on["ratio_to_off"] >= TARGET_RATIO else "misses"
    rounds = len(on["ratio_to_off_rounds"])
    lines = [
        "Identity + audit (scenario a with the cache on, memory://, ttl 60s, every ID number asked once per gateway): "
        f"with an RS256 JWT from an OIDC issuer (JWKS over HTTP) on every request and the audit on SQLite, "
        f"{on['rps']:.0f} req/s against {off['rps']:.0f} with both off: **{on['ratio_to_off']:.3f}** × off "
        f"({verdict} the target of {TARGET_RATIO}; median of {rounds} rounds taken in turns: "
        f"{', '.join(f'{x:.3f}' for x in on['ratio_to_off_rounds'])}); "
        f"p50 {off['p50_ms']:.1f} → {on['p50_ms']:.1f} ms, "
        f"p99 {off['p99_ms']:.1f} → {on['p99_ms']:.1f} ms, gateway CPU {off['gateway_cpu_ms_per_request']} → "
        f"{on['gateway_cpu_ms_per_request']} ms per request; {on['audit_records_per_request']} audit records and "
        f"{on['audit_commits_per_request']} commits per request.",
    ]
    cached = [name for name in IDENTITY_SIDES if name in r and r[name]["department_calls_per_request"] < UNCACHED]
    if cached:
        lines += [
            "",
            f"**Not comparable:** {', '.join(cached)} asked the department for fewer than {UNCACHED} of its requests "
            "(some answers came from the cache): rerun with more `--persons`.",
        ]
    if "identity_on_pg" in r:
        pg = r["identity_on_pg"]
        lines += [
            "",
            f"With the audit on PostgreSQL instead: {pg['rps']:.0f} req/s, **{pg['ratio_to_off']:.3f}** × off "
            f"({', '.join(f'{x:.3f}' for x in pg['ratio_to_off_rounds'])}); "
            f"p50 {pg['p50_ms']:.1f} ms, p99 {pg['p99_ms']:.1f} ms, gateway CPU {pg['gateway_cpu_ms_per_request']} "
            f"ms per request; {pg['audit_records_per_request']} audit records and "
            f"{pg['audit_commits_per_request']} commits per request.",
        ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
