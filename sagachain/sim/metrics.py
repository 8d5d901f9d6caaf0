"""What a run measured, as one value that the summary table and JSON are made from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sagachain.sim.membership_report import MembershipLog


@dataclass(frozen=True)
class TransferParts:
    """One account transfer (L2L-1), split into its parts, in virtual ms.

    ``release``: from the first request (or, for an unrequested return home,
    from nothing) until the owner's release block is final; ``gossip``: until
    the receiver learns of it; ``acquire``: until the receiver's acquire block
    is final.
    """

    release: int
    gossip: int
    acquire: int

    @property
    def total(self) -> int:
        return self.release + self.gossip + self.acquire


@dataclass
class TransferClock:
    """The times of each step of the transfers in flight, keyed by (account, receiving shard)."""

    requested: dict[tuple[bytes, str], int] = field(default_factory=dict)
    _released: dict[tuple[bytes, str], tuple[int, int]] = field(default_factory=dict)
    _known: dict[tuple[bytes, str], int] = field(default_factory=dict)

    def released(self, account: bytes, to: str, now: int) -> None:
        asked = self.requested.pop((account, to), now)
        self._released[(account, to)] = (asked, now)

    def known(self, account: bytes, to: str, now: int) -> None:
        self._known.setdefault((account, to), now)

    def acquired(self, account: bytes, shard: str, now: int) -> TransferParts:
        asked, released = self._released.pop((account, shard), (now, now))
        known = self._known.pop((account, shard), released)
        return TransferParts(release=released - asked, gossip=known - released, acquire=now - known)


def spread(values: list[int]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p99": None}
    ordered = sorted(values)
    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 1),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


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
    halted: dict[str, str] = field(default_factory=dict)  # shard -> "shard#height: rules" of its refused final block
    lies: dict[str, int] = field(default_factory=dict)  # a lying proposer's proposals: told, refused (sagachain.sim.liars)
    consensus: dict[str, object] = field(default_factory=dict)  # the members committee model's rounds and messages (sagachain.sim.members)
    broken_away: dict[str, str] = field(default_factory=dict)
    transfer_parts: list[TransferParts] = field(default_factory=list)
    queue_waits: list[int] = field(default_factory=list)
    shard_changes: list[tuple[int, str, str]] = field(default_factory=list)  # (time, add|remove, shard), SH-2
    withheld_blocks: int = 0  # enclave blocks whose off-chain state the producer kept to itself
    withheld_noticed: list[tuple[str, int, str, int]] = field(default_factory=list)  # (shard, height, replica, ms after final)
    membership: MembershipLog = field(default_factory=MembershipLog)  # epoch changes and their cost (MEM-3)

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
            "halted": self.halted,
            "lies": self.lies,
            "consensus": self.consensus or {"model": "modelled"},
            "broken_away": self.broken_away,
            "transfer_ms": {
                part: spread([getattr(p, part) for p in self.transfer_parts]) for part in ("release", "gossip", "acquire", "total")
            },
            "queue_wait_ms": spread(self.queue_waits),
            "withholding": {
                "withheld_blocks": self.withheld_blocks,
                "noticed": len(self.withheld_noticed),
                "first_noticed_ms": min((d for *_, d in self.withheld_noticed), default=None),
                "noticed_by": sorted({r for _, _, r, _ in self.withheld_noticed}),
            },
            "shard_changes": [{"t_ms": t, "change": c, "shard": s} for t, c, s in self.shard_changes],
            "membership": self.membership.to_json(),
        }
