"""Time series of a run: one row per sampling period of virtual time.

The metrics of ``sagachain.sim.metrics`` are cumulative; a sample keeps the
difference since the previous one, so each row says what happened in that
window (throughput, latency of what committed in it, transfers, gas, coinbase)
plus the state at its end (queue length and age, live shards). Rows are plain
dicts of numbers, written to ``timeseries.csv`` and drawn by
``sagachain.sim.plots``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagachain.sim.runner import Simulation

KINDS = ("open", "enclave", "mixed")
COLUMNS = (
    "t_ms",
    "committed_open",
    "committed_enclave",
    "committed_mixed",
    "tx_per_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "queued",
    "queue_age_ms",
    "public_shards",
    "enclave_shards",
    "blocks",
    "transfers",
    "gas_open",
    "gas_enclave",
    "gas_mixed",
    "floor_applied",
    "coinbase_public",
    "coinbase_enclave",
)


def percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class TimeSeries:
    interval: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    _last: dict[str, Any] = field(default_factory=dict)

    def sample(self, now: int, sim: Simulation) -> None:
        """Append the row for the window ending at ``now`` (no row twice for one instant)."""
        if self.rows and self.rows[-1]["t_ms"] == now:
            return
        m = sim.metrics
        totals = {
            **{f"committed_{k}": m.committed[k] for k in KINDS},
            **{f"gas_{k}": m.gas_charged[k] for k in KINDS},
            "latencies": len(m.latencies),
            "blocks": sum(m.blocks.values()),
            "transfers": m.acquires,
            "floor_applied": m.floor_applied,
            "coinbase_public": m.coinbase["public"],
            "coinbase_enclave": m.coinbase["enclave"],
        }
        last = self._last or {k: 0 for k in totals}
        delta = {k: totals[k] - last[k] for k in totals}
        window = now - (self.rows[-1]["t_ms"] if self.rows else 0)
        recent = m.latencies[last["latencies"] :]
        committed = sum(delta[f"committed_{k}"] for k in KINDS)
        queued = [now - q.arrived for machine in sim.machines.values() for q in machine.queue]
        live = [sid for sid in sim.machines if sid in sim.live and sid not in sim.stopped and sim.has_quorum(sid)]
        row: dict[str, Any] = {
            "t_ms": now,
            **{f"committed_{k}": delta[f"committed_{k}"] for k in KINDS},
            "tx_per_s": round(committed * 1000 / window, 2) if window else 0.0,
            "latency_p50_ms": percentile(recent, 0.5),
            "latency_p90_ms": percentile(recent, 0.9),
            "latency_p99_ms": percentile(recent, 0.99),
            "queued": len(queued),
            "queue_age_ms": round(sum(queued) / len(queued)) if queued else 0,
            "public_shards": sum(1 for sid in live if sim.machines[sid].enclave is None),
            "enclave_shards": sum(1 for sid in live if sim.machines[sid].enclave is not None),
            "blocks": delta["blocks"],
            "transfers": delta["transfers"],
            **{f"gas_{k}": _mean(delta[f"gas_{k}"], delta[f"committed_{k}"]) for k in KINDS},
            "floor_applied": delta["floor_applied"],
            "coinbase_public": delta["coinbase_public"],
            "coinbase_enclave": delta["coinbase_enclave"],
        }
        self.rows.append(row)
        self._last = totals

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=COLUMNS)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})


def _mean(total: int, count: int) -> float | None:
    return round(total / count, 1) if count else None
