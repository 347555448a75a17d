"""CPU of the rate limits per request, in memory: the gateway's budgets against ``limits``' own memory storage.

    python bench/rate_limit.py                       # 0, 1 000 and 10 000 other budgets held, 5 000 requests each
    python bench/rate_limit.py --held 0 50000 --requests 2000
    python bench/rate_limit.py --redis redis://127.0.0.1:6379/12   # also limits' Redis storage (--workers)

A request to /graphql is counted twice (its client address, then its principal), with the sliding window counter
the gateway uses (``SlidingWindowCounterRateLimiter``). This measures ``time.process_time()`` over ``--requests``
such pairs, each followed by a turn of the event loop as between requests, after ``--held`` other budgets (clients
or principals seen in the last two windows) were counted, for ``limits``' ``MemoryStorage`` (the baseline) and the
gateway's :class:`gateway.middleware.rate_limit.LocalBudgets`, in turns, in one process. Results go to
``<out>/rate-limit.json`` and ``<out>/rate-limit.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gateway.middleware.rate_limit import LocalBudgets, rate_limit_storage

RESULTS = Path(__file__).resolve().parent / "results"
STORAGES: dict[str, Callable[[], Storage]] = {"limits MemoryStorage": MemoryStorage, "LocalBudgets": LocalBudgets}
SHARED = "Redis (shared by --workers)"


async def _per_request(storage: Storage, held: int, requests: int) -> float:
    """Microseconds of CPU per request (two hits) with ``held`` other budgets in ``storage``."""
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("1000000/minute")
    for n in range(held):
        await limiter.hit(item, "onewindow", "client", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    await asyncio.sleep(0.01)  # whatever the counting started settles first
    started = time.process_time()
    for n in range(requests):
        assert await limiter.hit(item, "onewindow", "client", "127.0.0.1")
        assert await limiter.hit(item, "onewindow", "principal", f"p{n % 100}")
        await asyncio.sleep(0)
    return (time.process_time() - started) / requests * 1e6


async def measure(
    held_counts: Sequence[int], requests: int, rounds: int, storages: Mapping[str, Callable[[], Storage]] = STORAGES
) -> dict[str, Any]:
    figures: dict[str, dict[str, list[float]]] = {str(held): {name: [] for name in storages} for held in held_counts}
    for held in held_counts:
        for _ in range(rounds):
            for name, storage in storages.items():
                figures[str(held)][name].append(await _per_request(storage(), held, requests))
    return figures


def _markdown(report: dict[str, Any]) -> str:
    base, ours = STORAGES
    lines = [
        "# Rate limits in memory: CPU per request",
        "",
        "```",
        f"python bench/rate_limit.py --held {' '.join(report['figures'])} --requests {report['requests']}"
        + (f" --redis {report['redis']}" if report.get("redis") else ""),
        "```",
        "",
        f"Python {report['python']}; two hits per request (client, then principal), sliding window counter; "
        f"medians of {report['rounds']} rounds taken in turns in one process.",
        "",
        f"| other budgets held | {base} µs/request | {ours} µs/request | ratio |"
        + (f" {SHARED} µs/request |" if report.get("redis") else ""),
        "| ---: | ---: | ---: | ---: |" + (" ---: |" if report.get("redis") else ""),
    ]
    for held, by_storage in report["figures"].items():
        a, b = (statistics.median(by_storage[name]) for name in (base, ours))
        shared = f" {statistics.median(by_storage[SHARED]):.1f} |" if SHARED in by_storage else ""
        lines.append(f"| {int(held):,} | {a:.1f} | {b:.1f} | {b / a:.3f} |{shared}")
    if report.get("redis"):
        lines += [
            "",
            f"{SHARED}: `limits`' Redis storage at `{report['redis']}` (redis-py's asyncio client), which the "
            "gateway uses when several worker processes share their counters: each hit is a round trip.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--held", type=int, nargs="+", default=[0, 1000, 10_000])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--redis", help="also measure the Redis storage workers share, at this URL (its own database)")
    args = parser.parse_args(argv)
    storages = dict(STORAGES)
    if args.redis:
        storages[SHARED] = lambda: rate_limit_storage(args.redis)
    figures = asyncio.run(measure(args.held, args.requests, args.rounds, storages))
    report = {
        "python": sys.version.split()[0],
        "redis": args.redis,
        "requests": args.requests,
        "rounds": args.rounds,
        "figures": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rate-limit.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    markdown = _markdown(report)
    (args.out / "rate-limit.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
