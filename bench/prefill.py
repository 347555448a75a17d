"""Whole-form prefill latency: ``GET /prefill/{form}/{applicant}`` with 20 windows asking at once.

    python bench/prefill.py                          # 50 ms departments, 20 clients, 10 s per row
    python bench/prefill.py --duration 5 --forms social_assistance

A hall's windows each prefill a form for the applicant in front of them: this starts the demo departments (each
answering after ``--latency``) and a gateway on the demo configuration, open (:func:`run.data_plane_config`: every
field unconditional, a service principal, audit off), and drives ``--clients`` concurrent connections with wrk,
each request a whole form for the next applicant of the 1 200 the departments hold (the wrk threads start at
different places in the list, so no two windows ask for the same applicant at once). Per form, one row with the
cache off -- every field is asked of the departments -- one with it on (the demo's: memory, 60 s; the first
pass over the applicants misses, later passes hit), and one with a single client: the latency without queueing.

Before a row is timed, the first and last applicants' forms must come back 200 with every required field either
prefilled or answered for (no ``UNAVAILABLE``): a failure is fast, and timing one would flatter the gateway.

It prints p50, p95 and p99 (ms, from wrk's own histogram), requests per second, department calls per form, and
the machine's load average (``/proc/loadavg``) before and after each row, against the target p95 of 150 ms.
Results go to ``bench/results/prefill.json`` and ``bench/results/prefill.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from harness import ROOT, department_calls, lua_strings
from run import data_plane_config, demo_departments, gateway_env, id_numbers, onewindow_gateway

RESULTS = ROOT / "bench" / "results"
TARGET_P95_MS = 150.0
FORMS = ("social_assistance", "teacher_qualification")

# Each thread starts at its own place in the list (setup numbers the threads), so windows ask distinct applicants.
_LUA = """
local paths = {%s}
local threads = 0
setup = function(thread)
  thread:set("first", threads)
  threads = threads + 1
end
init = function(args)
  n = math.floor(first * #paths / %d)
end
request = function()
  n = n %% #paths + 1
  return wrk.format("GET", paths[n])
end
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES %%d %%d %%d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def _script(paths: Sequence[str], threads: int, path: Path) -> Path:
    path.write_text(_LUA % (lua_strings(paths), threads), encoding="utf-8")
    return path


def _load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _require_forms(url: str, paths: Sequence[str]) -> None:
    """The first and last forms: 200, and no field left UNAVAILABLE (a department failing is not prefill)."""
    for path in dict.fromkeys((paths[0], paths[-1])):
        answer = httpx.get(f"{url}{path}", timeout=30)
        fields = answer.json().get("fields", []) if answer.status_code == 200 else []
        broken = [f["label"] for f in fields if f["status"] == "UNAVAILABLE"]
        if answer.status_code != 200 or not fields or broken:
            raise RuntimeError(
                f"no clean form for {path.rsplit('/', 1)[0]} ({answer.status_code}): {broken or answer.text[:300]}"
            )


def _wrk(url: str, script: Path, *, duration: int, clients: int, threads: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    p50, p95, p99 = (int(v) / 1000 for v in re.search(r"PERCENTILES (\d+) (\d+) (\d+)", out).groups())  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "requests": total,
        "non_2xx": int(errors[1]) if errors else 0,
        "socket_errors": socket_errors[1] if socket_errors else None,
    }


def _row(
    args: argparse.Namespace,
    tmp: Path,
    config: Path,
    env: Mapping[str, str],
    stats: Mapping[str, str],
    form: str,
    clients: int,
) -> dict[str, Any]:
    known, _ = id_numbers(0)
    paths = [f"/prefill/{form}/{applicant}" for applicant in known]
    with onewindow_gateway(config, env) as (url, _pid):
        _require_forms(url, paths)
        script = tmp / f"{form}.lua"
        load_before = _load()
        before = department_calls(stats)
        threads = min(args.threads, clients)
        figures = _wrk(url, _script(paths, threads, script), duration=args.duration, clients=clients, threads=threads)
        after = department_calls(stats)
        figures["department_calls_per_form"] = round(
            (sum(after.values()) - sum(before.values())) / max(figures["requests"], 1), 2
        )
        figures["load_before"] = load_before
        figures["load_after"] = _load()
    return figures


def _markdown(report: dict[str, Any]) -> str:
    settings = report["settings"]
    lines = [
        "# Whole-form prefill latency",
        "",
        f"`GET /prefill/{{form}}/{{applicant}}`, {settings['clients']} concurrent clients (windows), distinct "
        f"applicants, departments at {settings['latency_s'] * 1000:g} ms, {settings['duration_s']} s per row, "
        f"{settings['cpus']} CPUs, one gateway process. Target: p95 <= {TARGET_P95_MS:g} ms with "
        f"{settings['clients']} clients. Department calls counted at the HTTP departments (the SQL ones are not).",
        "",
        "| form | clients | cache | p50 ms | p95 ms | p99 ms | req/s | requests | non-2xx | dept calls/form "
        "| p95 target | load before | load after |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in report["results"]:
        met = "met" if row["p95_ms"] <= TARGET_P95_MS else "missed"
        lines.append(
            f"| {row['form']} | {row['clients']} | {row['cache']} | "
            f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
            f"{row['rps']:.0f} | {row['requests']} | {row['non_2xx']} | {row['department_calls_per_form']} | {met} | "
            f"{row['load_before']} | {row['load_after']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.05, help="each department's latency, seconds")
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (windows)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--forms", nargs="+", default=list(FORMS), help="forms of demo/onewindow.yaml to prefill")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where prefill.json and prefill.md go")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="onewindow-bench-prefill-") as name:
        tmp = Path(name)
        with demo_departments(args.latency, tmp) as (variables, stats):
            config = data_plane_config(tmp)
            for form in args.forms:
                # the windows at once, cache off then on; then one window alone: the latency without queueing
                for clients, cache in ((args.clients, False), (args.clients, True), (1, False)):
                    env = gateway_env(variables, tmp, cache=cache)
                    row = _row(args, tmp, config, env, stats, form, clients)
                    results.append({"form": form, "clients": clients, "cache": "on" if cache else "off", **row})
                    print(f"{form} {clients} clients, cache {'on' if cache else 'off'}: {row}", file=sys.stderr)
    report = {
        "settings": {
            "latency_s": args.latency,
            "duration_s": args.duration,
            "clients": args.clients,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "policy": "open (demo.variants.demo_yaml), development principal, audit off",
            "target_p95_ms": TARGET_P95_MS,
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prefill.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "prefill.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
