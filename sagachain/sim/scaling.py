"""SH-2: public shards added and removed as the queue latency crosses its target.

The pool of public shards a run may use is declared up front (``s.public_shards``
with ``active=`` fewer than the pool): their committees are registered nodes
in the genesis, which is what permissionless means here. Scaling decides how
many of them take part. Adding one makes it live: transactions are routed to
it and placement strategies may give it homes. Removing one drains it: it
grants every account it holds to a live shard, its queue is routed
elsewhere, and once it holds nothing it stops producing blocks. Enclave
shards never scale (SH-3).

The signal is the mean time transactions wait in a queue over the last
``window`` samples of the time series (the age of those still queued on live
public shards counts too, so a stuck queue is seen before anything commits).
``cooldown`` keeps one change from following another before its effect shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.errors import InputError


@dataclass(frozen=True)
class ScalingPolicy:
    target_ms: int  # add a shard when the queue wait stays above this
    low_ms: int  # remove one when it stays below this
    window: int = 3  # consecutive samples the signal must stay beyond a bound
    cooldown_ms: int = 5_000  # least time between two changes
    min_shards: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.low_ms < self.target_ms:
            raise InputError(f"scaling needs 0 <= low_ms < target_ms, got {self.low_ms} and {self.target_ms}")
        if self.window < 1 or self.min_shards < 1:
            raise InputError("scaling window and min_shards must be at least 1")


@dataclass
class Scaler:
    """Decides, sample by sample, whether to add or remove a public shard."""

    policy: ScalingPolicy
    history: list[float] = field(default_factory=list)
    last_change: int | None = None

    def decide(self, now: int, signal: float, live: int, pool: int) -> int:
        """+1 to add a shard, -1 to remove one, 0 to stay."""
        self.history.append(signal)
        recent = self.history[-self.policy.window :]
        if len(recent) < self.policy.window:
            return 0
        if self.last_change is not None and now - self.last_change < self.policy.cooldown_ms:
            return 0
        if all(v > self.policy.target_ms for v in recent) and live < pool:
            self.last_change = now
            return 1
        if all(v < self.policy.low_ms for v in recent) and live > self.policy.min_shards:
            self.last_change = now
            return -1
        return 0
