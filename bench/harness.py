"""What every benchmark scenario needs: processes started and stopped, wrk driven and read, answers checked.

    with process([sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port)], env=env) as gateway:
        wait_http(f"{url}/healthz")
        require_data(url, bodies)                  # a refused or failed answer must never be timed as "fast"
        figures = wrk(url, lua(bodies, tmp / "person.lua"), duration=10, connections=10, threads=2)

Every helper is synchronous: the benchmark drives processes and reads their counters, it serves nothing itself.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ROOT",
    "cpu_seconds",
    "department_calls",
    "free_port",
    "lua",
    "process",
    "process_tree",
    "require_data",
    "rss_mb",
    "tree_cpu_seconds",
    "tree_rss_mb",
    "wait_http",
    "wrk",
]

ROOT = Path(__file__).resolve().parent.parent

_LUA = """
local bodies = {%s}
local n = 0
request = function()
  n = n %% #bodies + 1
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, bodies[n])
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g}s")


@contextmanager
def process(
    args: Sequence[str], env: Mapping[str, str] | None = None, *, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in a session of its own, interrupted (then killed) with everything it started; its output
    goes to ``log`` if given (appended), else to the benchmark's own."""
    with ExitStack() as stack:
        output = stack.enter_context(log.open("ab")) if log is not None else None
        proc = subprocess.Popen(
            args, env=env, cwd=ROOT, start_new_session=True, stdout=output, stderr=subprocess.STDOUT if log else None
        )
        with _stopped(proc):
            yield proc


@contextmanager
def _stopped(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def lua(bodies: Sequence[str], path: Path) -> Path:
    """A wrk script POSTing ``bodies`` in turn (each thread walks the list from its start)."""
    path.write_text(_LUA % lua_strings(bodies), encoding="utf-8")
    return path


def lua_strings(values: Sequence[str]) -> str:
    """``values`` as the items of a Lua table constructor (long brackets: no escaping needed)."""
    return ",".join("[==[" + v + "]==]" for v in values)


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(text)
    return float(match[1]) * _UNITS[match[2]]


def wrk(url: str, script: Path, *, duration: int, connections: int, threads: int) -> dict[str, Any]:
    """Requests per second, p50 and p99 latency (ms), requests sent and non-2xx answers of one wrk run."""
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


def require_data(url: str, bodies: Sequence[str], headers: Mapping[str, str] | None = None) -> None:
    """POST the first and last of ``bodies``: each answer must be 200 with data and no errors. A policy refusal, a
    401 or a department failure is fast to produce; timing it would report a gateway that does no work."""
    for body in dict.fromkeys((bodies[0], bodies[-1])):
        answer = httpx.post(
            f"{url}/graphql",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=30,
        )
        try:
            document = answer.json()
        except json.JSONDecodeError:
            document = None
        ok = isinstance(document, dict) and document.get("data") is not None and not document.get("errors")
        if answer.status_code != 200 or not ok:
            raise RuntimeError(
                f"{url} gave no clean answer to a benchmark request ({answer.status_code}): {answer.text[:300]}\n"
                f"request: {body[:200]}"
            )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process it started, at any depth, that is still running (Linux)."""
    found = [pid]
    for parent in found:  # grows as children are found
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                found.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:  # the task ended meanwhile
                continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` summed over :func:`process_tree` (a supervisor and its workers)."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_rss_mb(pid: int) -> float:
    """:func:`rss_mb` summed over :func:`process_tree`."""
    return sum(rss_mb(p) for p in process_tree(pid))


def department_calls(stats_urls: Mapping[str, str]) -> dict[str, int]:
    """Calls each HTTP department has answered so far (the demo departments' counters)."""
    return {name: int(httpx.get(url, timeout=5).json()["total"]) for name, url in stats_urls.items()}
