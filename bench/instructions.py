"""Instructions per request on a cache miss, counted by valgrind: a baseline revision against the working tree.

    python bench/instructions.py                                  # HEAD against the working tree, every workload
    python bench/instructions.py --base 5e1ba67 --only cases --requests 20

Timing CPU on a shared virtual machine moves by several per cent between runs of the same code, more than most
single changes are worth. An instruction count does not: the same code, inputs and hash seed count the same within
a few tenths of a per cent, whatever else the machine is doing. For each workload this starts the demo departments
(0 ms, in a process of their own, not counted) and builds the gateway in-process on the open data-plane
configuration of bench/run.py (cache off), for the baseline (checked out in a temporary git worktree) and for the
working tree, each under ``valgrind --tool=callgrind`` at the same time (one per core). Each drives its app over
raw ASGI (no sockets, no client library): ``--warm`` requests, then callgrind's counters are zeroed, ``--requests``
requests are sent one after another, and the counters dumped. Instructions per request are those counted over the
requests (every thread of the process: the event loop, SQLite's worker threads), divided by their number.

Workloads are bench/cpu_profile.py's: ``person``, ``rest_soap`` and ``cases``. Results go to
``<out>/instructions.json`` and ``<out>/instructions.md``. Instructions are not seconds (a cache miss or a branch
mispredicted costs more than an add), so the figures of record stay bench/cpu_profile.py's and bench/compare.py's;
this tells whether a change made the work smaller, and by how much.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("person", "rest_soap", "cases")
Message = MutableMapping[str, Any]


def _bodies(workload: str) -> list[bytes]:
    from compare import FANOUT
    from run import CASES_QUERY, PERSON_QUERY, _body, id_numbers

    if workload == "cases":
        return [_body(CASES_QUERY).encode()]
    _, distinct = id_numbers(10_000)
    query = {"person": PERSON_QUERY, "rest_soap": FANOUT}[workload]
    return [_body(query, key).encode() for key in distinct]


async def _post(app: Callable[..., Awaitable[None]], body: bytes, state: dict[str, Any]) -> tuple[int, bytes]:
    """One POST /graphql to ``app`` over raw ASGI: the status and the body."""
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"accept", b"application/json")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),
    }
    received = False
    status, chunks = 0, []

    async def receive() -> Message:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _callgrind(*command: str) -> None:
    """Ask the valgrind this process runs under to do ``command``; it is done when callgrind_control returns (the
    loop keeps turning meanwhile, so that valgrind gets to read the request)."""
    control = await asyncio.create_subprocess_exec(
        "callgrind_control", *command, str(os.getpid()), stdout=subprocess.DEVNULL
    )
    await control.wait()


async def _drive(app: Any, workload: str, warm: int, requests: int) -> None:
    bodies = _bodies(workload)
    lifespan = app.router.lifespan_context(app)
    state = dict(await lifespan.__aenter__() or {})
    try:
        status, answer = await _post(app, bodies[0], state)
        if status != 200 or b'"errors"' in answer:
            raise RuntimeError(f"{workload}: the gateway did not answer with data: {status} {answer[:300]!r}")
        for n in range(warm):
            await _post(app, bodies[n % len(bodies)], state)
        await _callgrind("-z")
        for n in range(warm, warm + requests):
            await _post(app, bodies[n % len(bodies)], state)
        await _callgrind("-d")
    finally:
        await lifespan.__aexit__(None, None, None)


def drive(workload: str, warm: int, requests: int) -> None:
    """The counted process (under valgrind): the gateway of the tree first on ``sys.path`` (PYTHONPATH)."""
    import uvloop
    from run import data_plane_config, demo_departments, gateway_env

    from gateway.app import serving_builder
    from gateway.config import load_config

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with demo_departments(0.0, tmp) as (variables, _stats):
            env = gateway_env(variables, tmp, cache=False)
            os.environ.update(env)
            config = load_config(data_plane_config(tmp), env)
            app = serving_builder()(config, freeze_startup_objects=True)  # as ``onewindow serve`` builds it
            uvloop.run(_drive(app, workload, warm, requests))


def _counted(tree: Path, workload: str, args: argparse.Namespace, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    here = [sys.executable, str(HERE / "instructions.py"), "--drive", workload]
    options = ["--warm", str(args.warm), "--requests", str(args.requests)]
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    log = (out.parent / f"{out.name}.log").open("wb")
    return subprocess.Popen([*valgrind, *here, *options], env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT)


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="the baseline revision (default HEAD)")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--requests", type=int, help="counted requests (default: 100, 20 for cases)")
    parser.add_argument("--warm", type=int, default=30)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--drive", choices=WORKLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        drive(args.drive, args.warm, args.requests)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (with callgrind_control) is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    root = HERE.parent
    revision = subprocess.run(
        ["git", "rev-parse", "--short", args.base], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = tmp / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), revision], cwd=root, check=True)
        try:
            for workload in args.only:
                requests = args.requests or (20 if workload == "cases" else 100)
                one = argparse.Namespace(warm=args.warm, requests=requests)
                started = time.monotonic()
                runs = {
                    side: _counted(tree, workload, one, tmp / f"{workload}-{side}")
                    for side, tree in (("base", base), ("tree", root))
                }
                for side, run in runs.items():
                    if run.wait() != 0:
                        log = (tmp / f"{workload}-{side}.log").read_text()[-2000:]
                        raise RuntimeError(f"{workload} ({side}) failed:\n{log}")
                counts = {side: _total(tmp / f"{workload}-{side}.1") / requests for side in runs}
                figures[workload] = {"requests": requests, **{side: round(n) for side, n in counts.items()}}
                figures[workload]["ratio"] = round(counts["tree"] / counts["base"], 4)
                print(
                    f"{workload:>10}: {revision} {counts['base']:,.0f}  tree {counts['tree']:,.0f} instructions/request"
                    f"  ratio {figures[workload]['ratio']:.4f}  ({time.monotonic() - started:.0f} s)"
                )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=root, check=False)
    report = {"base": revision, "python": sys.version.split()[0], "warm": args.warm, "figures": figures}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructions.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (args.out / "instructions.md").write_text(_markdown(report), encoding="utf-8")
    print(_markdown(report))
    return 0


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Instructions per request on a cache miss",
        "",
        "```",
        f"python bench/instructions.py --base {report['base']}",
        "```",
        "",
        f"Python {report['python']}, valgrind callgrind, departments at 0 ms in their own process (not counted), "
        f"{report['warm']} requests to warm up, then the counted ones one after another; `ratio` is the working "
        f"tree over {report['base']} (below 1: less work).",
        "",
        f"| workload | requests | {report['base']} | working tree | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for workload, figures in report["figures"].items():
        counts = f"{figures['base']:,} | {figures['tree']:,}"
        lines.append(f"| {workload} | {figures['requests']} | {counts} | {figures['ratio']:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
