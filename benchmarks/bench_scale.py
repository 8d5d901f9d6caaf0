"""How the simulator scales: simulated transactions per wall second and peak memory.

Run ``python benchmarks/bench_scale.py`` (``--full`` adds the full-size
``scenarios/large.py``: a million accounts, 1,024 nodes, 64 shards, which
takes minutes). Each workload runs in a fresh child process, so its peak
resident memory is its own; figures go to ``benchmarks/scale.json`` and the
README quotes them. Wall-clock figures depend on the machine: compare runs
from one machine only.

Workloads (all with seed 1):

- ``quickstart``: scenarios/quickstart.py as it ships;
- ``open-load``: 4 public shards, 40 accounts, 1,000 transfers;
- ``large-100k``: scenarios/large.py with 100,000 accounts and 10,000
  transactions over 20 virtual seconds (crypto modelled);
- ``large-full`` (``--full``): scenarios/large.py at its defaults.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
LARGE_SMALL = {"accounts": "100000", "transactions": "10000", "load_ms": "20000", "duration": "40000"}
OPEN_LOAD = '''
def build(s):
    s.configure(duration=60_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(4, nodes=4)
    for i in range(40):
        s.account(f"user{i}", balance=1_000_000)
    s.random_transfers(1_000, start=100, end=50_000)
'''


def measure(scenario: str, settings: dict[str, str]) -> dict[str, Any]:
    """Run one workload end to end in this (child) process and report its figures."""
    sys.path.insert(0, str(ROOT))
    from sagachain.sim.load import run_scenario

    with TemporaryDirectory() as tmp:
        path = Path(scenario)
        if not path.is_file():  # inline source
            path = Path(tmp) / "open_load.py"
            path.write_text(scenario)
        started = time.perf_counter()
        result, summary = run_scenario(path, 1, Path(tmp) / "out", settings=settings, plots=False)
        total = time.perf_counter() - started
    committed = sum(result.metrics.committed.values())
    return {
        "settings": settings,
        "accounts": len(result.world.genesis.accounts),
        "shards": len(result.world.genesis.shards),
        "nodes": len(result.world.genesis.nodes),
        "blocks": len(result.blocks),
        "submitted": result.metrics.submitted,
        "committed": committed,
        "crypto": summary["crypto"],
        "simulation_seconds": round(result.wall_seconds, 2),
        "total_seconds": round(total, 2),
        "tx_per_wall_second": round(committed / result.wall_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "audit": summary["checks"]["audit"]["verdict"],
    }


def run_isolated(scenario: str, settings: dict[str, str]) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (scenario, settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Example: python benchmarks/bench_scale.py --full")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "scale.json")
    parser.add_argument("--full", action="store_true", help="also run scenarios/large.py at full size (minutes)")
    args = parser.parse_args()
    plan = {
        "quickstart": (str(ROOT / "scenarios" / "quickstart.py"), {}),
        "open-load": (OPEN_LOAD, {}),
        "large-100k": (str(ROOT / "scenarios" / "large.py"), LARGE_SMALL),
    }
    if args.full:
        plan["large-full"] = (str(ROOT / "scenarios" / "large.py"), {})
    console = Console()
    figures: dict[str, Any] = {}
    for name, (scenario, settings) in plan.items():
        with console.status(f"running {name}"):
            figures[name] = run_isolated(scenario, settings)
    args.out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    table = Table(title="simulator scale (seed 1; wall clock on this machine)")
    for column in ("workload", "accounts", "nodes", "committed", "sim s", "total s", "tx/s", "MB"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for name, f in figures.items():
        table.add_row(
            f"{name} ({f['crypto']})", f"{f['accounts']:,}", f"{f['nodes']:,}", f"{f['committed']:,}/{f['submitted']:,}",
            str(f["simulation_seconds"]), str(f["total_seconds"]), str(f["tx_per_wall_second"]), str(f["peak_rss_mb"]),
        )
    console.print(table)
    console.print("tx/s: committed transactions per wall second of simulation; MB: peak resident memory; audits: "
                  + ", ".join(f"{n} {f['audit']}" for n, f in figures.items()))
    console.print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
