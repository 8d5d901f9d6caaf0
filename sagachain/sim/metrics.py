"""What a run measured, as one value that the summary table and JSON are made from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Metrics:
    submitted: int = 0
    committed: Counter[str] = field(default_factory=Counter)
    failed_open: int = 0
    latencies: list[int] = field(default_factory=list)
    blocks: Counter[str] = field(default_factory=Counter)
    ignored_blocks: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_blocks: Counter[str] = field(default_factory=Counter)
    releases: int = 0
    acquires: int = 0
    coinbase: Counter[str] = field(default_factory=Counter)
    gas_charged: Counter[str] = field(default_factory=Counter)
    floor_applied: int = 0
    terminated: dict[str, str] = field(default_factory=dict)
    broken_away: dict[str, str] = field(default_factory=dict)

    def percentile(self, q: float) -> int | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def to_json(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "committed": dict(sorted(self.committed.items())),
            "failed_open": self.failed_open,
            "latency_ms": {"p50": self.percentile(0.5), "p99": self.percentile(0.99), "count": len(self.latencies)},
            "blocks": dict(sorted(self.blocks.items())),
            "ignored_blocks": self.ignored_blocks,
            "rejected_transactions": dict(sorted(self.rejected.items())),
            "rejected_blocks": dict(sorted(self.rejected_blocks.items())),
            "transfers": {"releases": self.releases, "acquires": self.acquires},
            "coinbase": dict(sorted(self.coinbase.items())),
            "gas_charged": dict(sorted(self.gas_charged.items())),
            "gas_floor_applied": self.floor_applied,
            "terminated": self.terminated,
            "broken_away": self.broken_away,
        }
