"""The comparison's plot: OneWindow's advantage over Mesh per workload, as grouped bars with the goal line.

    plot_ratios(json.loads(Path("bench/results/mesh.json").read_text()), Path("bench/results/mesh.png"))
    python bench/plot.py bench/results/mesh.json     # redraw mesh.png beside it

Every bar is oriented so that higher is better for OneWindow (req/s OneWindow ÷ Mesh; p99 and CPU per request
Mesh ÷ OneWindow), so one line marks the goal for all three.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["NOISY_LOAD", "plot_ratios"]

NOISY_LOAD = 0.5
"""A 1-minute load average, read before the benchmark starts anything, from which the plot calls its figures noisy."""

_BARS: tuple[tuple[str, Callable[[dict[str, float]], float]], ...] = (
    ("req/s: OneWindow ÷ Mesh", lambda r: r["rps"]),
    ("p99: Mesh ÷ OneWindow", lambda r: 1 / r["p99"]),
    ("CPU per request: Mesh ÷ OneWindow", lambda r: 1 / r["cpu_per_request"]),
)


def plot_ratios(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    timed = {name: r["ratios"] for name, r in report["results"].items() if "ratios" in r}
    goal = report["settings"]["goal"]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(_BARS)
    for index, (label, value) in enumerate(_BARS):
        xs = [i + (index - (len(_BARS) - 1) / 2) * width for i in range(len(timed))]
        heights = [value(r) for r in timed.values()]
        bars = ax.bar(xs, heights, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(goal, color="tab:red", linestyle="--", linewidth=1.2, label=f"goal {goal}×")
    ax.axhline(1.0, color="grey", linewidth=0.8, label="parity")
    ax.set_xticks(range(len(timed)), list(timed))
    ax.set_ylabel("OneWindow's advantage (higher is better)")
    s, load = report["settings"], report["machine"]["start"]["load_average_1m"]
    noisy = ": other work on the machine, noisy figures" if load >= NOISY_LOAD else ""
    workers, mesh_fork = s.get("workers", 1), s.get("mesh_fork", s.get("workers", 1))
    processes = "" if workers == mesh_fork == 1 else f"OneWindow ×{workers} processes, Mesh ×{mesh_fork} — "
    ax.set_title(
        f"OneWindow vs GraphQL Mesh — {processes}{s['connections']} connections, departments at "
        f"{s['latency_s'] * 1000:.0f} ms, "
        f"medians of {s['rounds']} × {s['duration_s']} s\n(load average {load} at the start{noisy})",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    untimed = [f"{name}: {r['not_timed'].split(':')[0]}" for name, r in report["results"].items() if "not_timed" in r]
    if untimed:
        fig.text(0.01, 0.01, "Not timed — " + "; ".join(untimed), fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.04 if untimed else 0, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    source = Path(sys.argv[1])
    plot_ratios(json.loads(source.read_text(encoding="utf-8")), source.with_suffix(".png"))
