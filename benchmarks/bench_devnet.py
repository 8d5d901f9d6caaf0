"""Speed of the real node: committed transactions per second and commit latency on a 4-process devnet.

Run ``python benchmarks/bench_devnet.py`` (``--quick`` for 5-second loads,
``--out FILE`` to choose where the figures go; default
``benchmarks/devnet.json``). For each configuration it starts a devnet of four
node processes on 127.0.0.1, offers load at each rate in turn (the
simulator's mix workload, ``sagachain devnet load``), and always brings the
devnet down, even when a load fails or the run is interrupted.

Configurations (four node processes each):

- ``enclave``: one public shard and one enclave shard, two nodes each, with
  the default mix (60 % open, 20 % enclave, 20 % mixed). Two-member
  committees need both members for a quorum (SH-1): no fault tolerance, but
  every kind of transaction;
- ``bft4``: one public shard with a committee of four (tolerates one faulty
  member), open transfers only.

How to read the result: ``committed_tps`` close to the offered rate means the
devnet keeps up; where it falls behind, the latency percentiles climb and
``pending`` (accepted, not final after the drain) grows. Figures are
wall-clock on this machine: compare runs from one machine only.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.devnet import DevnetSpec, stop_devnet, up  # noqa: E402
from node.devnet_load import LoadSpec, last_nonces, parse_mix, plan_load, run_load  # noqa: E402

CONFIGS: dict[str, tuple[DevnetSpec, str]] = {
    "enclave": (DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=2, accounts=16, enclave_accounts=4), "open=0.6,enclave=0.2,mixed=0.2"),
    "bft4": (DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=4, accounts=16, enclave_accounts=0), "open=1"),
}


def bench_config(name: str, rates: list[float], duration: float, drain: float, console: Console) -> list[dict[str, Any]]:
    """One devnet, the loads at each rate one after the other (nonces go on), then down."""
    import trio

    spec, mix_text = CONFIGS[name]
    rows = []
    with TemporaryDirectory(prefix=f"devnet-{name}-") as tmp:
        root = Path(tmp) / "devnet"
        with console.status(f"{name}: starting {spec.nodes_per_shard * (spec.shards + spec.enclave_shards)} nodes"):
            record = up(root, spec, metrics=False, timeout=60)
        try:
            nonces: dict[str, int] = {}
            for rate in rates:
                load = LoadSpec(rate=rate, duration=duration, mix=parse_mix(mix_text), seed=int(rate))
                planned = plan_load(record, load, nonces)
                nonces = last_nonces(planned, nonces)
                with console.status(f"{name}: {rate:g} tx/s for {duration:g} s ({len(planned)} tx)"):
                    report = trio.run(run_load, record, load, planned, drain)
                rows.append({"config": name, "offered_tps": rate, "duration_s": duration, "planned": report.planned,
                             "submitted": report.submitted, "accepted": report.accepted, "committed": report.committed,
                             "committed_tps": round(report.committed_tps, 2), "p50_ms": _ms(report.latency_ms["p50"]),
                             "p90_ms": _ms(report.latency_ms["p90"]), "p99_ms": _ms(report.latency_ms["p99"]),
                             "pending": report.pending, "rejected": report.rejected})
                console.print(f"{name} at {rate:g} tx/s: {report.committed}/{report.planned} committed, "
                              f"{report.committed_tps:.1f} tx/s, p50 {_ms(report.latency_ms['p50'])} ms")
        finally:
            with console.status(f"{name}: stopping the devnet"):
                stop_devnet(root, timeout=10)
    return rows


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="devnet: 4 node processes on 127.0.0.1")
    for column in ("config", "offered tx/s", "committed", "committed tx/s", "p50 ms", "p99 ms", "pending"):
        out.add_column(column, justify="left" if column == "config" else "right")
    for r in rows:
        out.add_row(r["config"], f"{r['offered_tps']:g}", f"{r['committed']}/{r['planned']}", f"{r['committed_tps']:.1f}",
                    str(r["p50_ms"]), str(r["p99_ms"]), str(r["pending"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Example: python benchmarks/bench_devnet.py --quick")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "devnet.json")
    parser.add_argument("--rates", default="5,20,50,100", help="offered tx/s, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per rate")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for commits after each load")
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="5-second loads (a smoke run, noisier figures)")
    args = parser.parse_args()
    duration = 5.0 if args.quick else args.duration
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    console = Console()
    rows: list[dict[str, Any]] = []
    for name in CONFIGS if args.config == "all" else [args.config]:
        rows += bench_config(name, rates, duration, args.drain, console)
    console.print(table(rows))
    figures = {"machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()},
               "duration_s": duration, "rates": rates, "results": rows}
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    console.print(f"figures written to [bold]{args.out}[/bold]")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    main()
