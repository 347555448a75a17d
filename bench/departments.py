"""The demo departments in a process of their own, for the benchmark.

    python bench/departments.py --latency 0.02 --data-dir /tmp/x --variables /tmp/x/variables.json

Writes the configuration variables (and, under ``__stats__``, each HTTP department's counter URL) to the
variables file once every department answers, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

from demo.behaviour import STATS_PATH
from demo.departments import DemoDepartments


async def _serve(latency: float, data_dir: Path, variables: Path) -> None:
    async with DemoDepartments(data_dir, latency=latency) as departments:
        values = dict(departments.variables)
        values["__stats__"] = json.dumps({name: f"{url}{STATS_PATH}" for name, url in departments.urls.items()})
        partial = variables.with_suffix(".tmp")
        partial.write_text(json.dumps(values), encoding="utf-8")
        partial.rename(variables)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--variables", type=Path, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.latency, args.data_dir, args.variables))


if __name__ == "__main__":
    main()
