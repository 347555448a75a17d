"""CPU per SOAP call, compiled against zeep's path, against the demo SOAP departments served in another process.

    python bench/soap_cpu.py --calls 2000

Starts ``bench/departments.py`` (its CPU is not counted), opens one adapter per path and measures
``time.process_time()`` of this process over ``--calls`` sequential ``fetch`` calls per query, after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from adapters.soap import SoapAdapter
from gateway.config import SourceConfig

_HOUSEHOLD = {
    "person": {
        "operation": "QueryPerson",
        "request": {"IdCardNo": "{key}"},
        "result": "Person",
        "batch": {
            "operation": "QueryPersonBatch",
            "request": {"IdCardNos": {"IdCardNo": "{keys}"}},
            "result": "Persons.Person",
            "key": "IdCardNo",
        },
    }
}
_MARRIAGE = {"marriage": {"operation": "QueryMarriage", "request": {"IdCardNo": "{key}"}, "result": "MarriageRecord"}}


def _adapter(wsdl: str, queries: dict[str, Any], fast: bool) -> SoapAdapter:
    config = SourceConfig.model_validate(
        {"kind": "soap", "department": "bench", "timeout": 10, "wsdl": wsdl, "fast_path": fast,
         "queries": queries, "provides": {}}
    )  # fmt: skip
    return SoapAdapter("bench", config)


async def _cpu_per_call(adapter: SoapAdapter, query: str, keys: list[list[str]], calls: int) -> float:
    for batch in keys[:100]:  # warm-up: connections, caches
        await adapter.fetch(query, batch)
    start = time.process_time()
    for i in range(calls):
        await adapter.fetch(query, keys[i % len(keys)])
    return (time.process_time() - start) / calls * 1000


async def _measure(variables: dict[str, str], keys: list[str], calls: int) -> list[tuple[str, float, float]]:
    rows = []
    cases = [
        ("public_security QueryPerson (SOAP 1.1)", variables["DEMO_PUBLIC_SECURITY_WSDL"], _HOUSEHOLD, "person", 1),
        ("public_security QueryPersonBatch x10 (SOAP 1.1)", variables["DEMO_PUBLIC_SECURITY_WSDL"], _HOUSEHOLD,
         "person", 10),
        ("civil_affairs QueryMarriage (SOAP 1.2)", variables["DEMO_CIVIL_AFFAIRS_WSDL"], _MARRIAGE, "marriage", 1),
    ]  # fmt: skip
    for label, wsdl, queries, query, size in cases:
        batches = [keys[i : i + size] for i in range(0, len(keys) - size, size)]
        measured = {}
        for fast in (False, True):
            async with _adapter(wsdl, queries, fast) as adapter:
                assert (adapter.zeep_calls == {}) is fast, adapter.zeep_calls
                measured[fast] = await _cpu_per_call(adapter, query, batches, calls)
        rows.append((label, measured[False], measured[True]))
    return rows


async def _http_floor(variables: dict[str, str], keys: list[str], calls: int) -> float:
    """CPU per call of the same exchange with no SOAP layer: a compiled envelope POSTed with httpx, not read."""
    async with _adapter(variables["DEMO_PUBLIC_SECURITY_WSDL"], _HOUSEHOLD, True) as adapter:
        call, http = adapter._compiled["person"], adapter._http
        assert http is not None
        bodies = [call.envelope([key]) for key in keys]
        for body in bodies[:100]:
            await http.post(call.address, content=body, headers=call.headers)
        start = time.process_time()
        for i in range(calls):
            await http.post(call.address, content=bodies[i % len(bodies)], headers=call.headers)
        return (time.process_time() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        variables_file = Path(tmp) / "variables.json"
        server = subprocess.Popen(
            [sys.executable, "bench/departments.py", "--latency", "0", "--data-dir", tmp, "--variables",
             str(variables_file)],
            cwd=root,
        )  # fmt: skip
        try:
            while not variables_file.exists():
                if server.poll() is not None:
                    raise SystemExit("the demo departments did not start")
                time.sleep(0.1)
            variables = json.loads(variables_file.read_text(encoding="utf-8"))
            from demo.data import build_dataset

            keys = list(build_dataset().persons_by_id)
            rows = asyncio.run(_measure(variables, keys, args.calls))
            floor = asyncio.run(_http_floor(variables, keys, args.calls))
        finally:
            server.terminate()
            server.wait()
    print(f"CPU per call, {args.calls} sequential calls each, time.process_time() of the gateway process")
    print("| call | zeep (ms) | compiled (ms) | saved |")
    print("|---|---:|---:|---:|")
    for label, slow, fast in rows:
        print(f"| {label} | {slow:.3f} | {fast:.3f} | {1 - fast / slow:.0%} |")
    print(f"\nThe same QueryPerson exchange as a bare httpx POST (no SOAP layer, answer not read): {floor:.3f} ms")


if __name__ == "__main__":
    main()
