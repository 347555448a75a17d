"""The share of required materials government already holds, across the demo's cases.

For every case of the demo (2 400), the gateway is asked over HTTP ``materials(serviceItem:, applicant:)`` for the
case's item and applicant, and each required material counts as held when its status is ``HELD``. The gateway runs
the demo configuration with the data-plane policy (:mod:`demo.variants`: a service principal that needs no purpose,
every field unconditional), so the figure measures what the departments hold, not who may see it::

    python bench/materials.py              # a table per service item, then the overall share
    python bench/materials.py --json       # the same figures as JSON

A case's applicant is asked once per item however many cases they have of it; each case still counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from demo.departments import DemoDepartments
from demo.model import Dataset
from demo.variants import demo_yaml
from gateway.app import create_app
from gateway.config import load_config
from gateway.serving import serve_asgi

QUERY = """
query($item: String!, $applicant: String!) {
  materials(serviceItem: $item, applicant: $applicant) { name required status }
}"""
CONCURRENCY = 8


@dataclass
class ItemShare:
    """One service item's cases and how many of their required materials were held, by status."""

    code: str
    name: str
    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def required(self) -> int:
        return sum(self.statuses.values())

    @property
    def held(self) -> int:
        return self.statuses["HELD"]

    @property
    def share(self) -> float:
        return self.held / self.required if self.required else 0.0


async def measure(directory: Path) -> tuple[Dataset, list[ItemShare]]:
    """Start the demo departments and a gateway over them, and ask for every case's materials."""
    async with DemoDepartments(directory) as departments:
        variables = departments.variables | {
            "DEMO_AUDIT_URL": f"sqlite+aiosqlite:///{directory / 'audit.db'}",
            "DEMO_KEYS_URL": f"sqlite+aiosqlite:///{directory / 'keys.db'}",
            "DEMO_RATE_LIMIT": "1000000/minute",
        }
        config = load_config(demo_yaml(directory), variables)
        dataset = departments.dataset
        pairs = sorted({(case.service_item, case.applicant_id) for case in dataset.cases})
        answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        limit = asyncio.Semaphore(CONCURRENCY)
        async with serve_asgi(create_app(config)) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def ask(item: str, applicant: str) -> None:
                async with limit:
                    response = await client.post(
                        "/graphql", json={"query": QUERY, "variables": {"item": item, "applicant": applicant}}
                    )
                body = response.json()
                if body.get("errors"):
                    raise SystemExit(f"materials({item}, {applicant}) failed: {body['errors'][0]['message']}")
                answers[(item, applicant)] = body["data"]["materials"]

            await asyncio.gather(*(ask(item, applicant) for item, applicant in pairs))
    items = {code: ItemShare(code, item.name) for code, item in dataset.service_items_by_code.items()}
    for case in dataset.cases:
        share = items[case.service_item]
        share.cases += 1
        share.statuses.update(m["status"] for m in answers[(case.service_item, case.applicant_id)] if m["required"])
    return dataset, [share for share in items.values() if share.cases]


def report(shares: list[ItemShare]) -> str:
    """A Markdown table, the items with the largest share held first, and the overall line."""
    total: Counter[str] = Counter()
    lines = [
        "| item | code | cases | required | held | share | expired | not held | refused | not connected |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in sorted(shares, key=lambda s: (-s.share, s.code)):
        total.update(s.statuses)
        st = s.statuses
        lines.append(
            f"| {s.name} | {s.code} | {s.cases} | {s.required} | {s.held} | {s.share:.1%} | {st['EXPIRED']} | "
            f"{st['NOT_HELD']} | {st['REFUSED']} | {st['NOT_CONNECTED']} |"
        )
    required = sum(total.values())
    connected = required - total["NOT_CONNECTED"]
    lines += [
        "",
        f"Required materials across {sum(s.cases for s in shares)} cases: {required}; already held: "
        f"{total['HELD']} ({total['HELD'] / required:.1%}); matched to a department system: {connected} "
        f"({connected / required:.1%}); of those held: {total['HELD'] / connected:.1%}.",
        f"Not held: {total['NOT_HELD']}, expired: {total['EXPIRED']}, refused: {total['REFUSED']}, "
        f"unavailable: {total['UNAVAILABLE']}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="onewindow-materials-") as tmp:
        _, shares = asyncio.run(measure(Path(tmp)))
    if args.json:
        figures = {s.code: {"name": s.name, "cases": s.cases, **s.statuses} for s in shares}
        print(json.dumps(figures, ensure_ascii=False, indent=2))
    else:
        print(report(shares))
    return 0


if __name__ == "__main__":
    sys.exit(main())
