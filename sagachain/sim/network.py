"""The simulated network between shards: latency, bandwidth, loss, gossip, partitions.

Every delay is drawn from the run's one seeded generator, in the order the
simulator asks for them, so a run is reproducible to the byte. Times are
integer virtual milliseconds (a draw is rounded, and never below 1 ms for a
message between two shards).

Messages come in two kinds. *Reliable* ones (block votes, final blocks, their
gossip) are retransmitted until they arrive: loss adds a retransmission
timeout plus a fresh latency per lost attempt, and a partition holds them
until it heals. *Unreliable* ones (L2L requests, which the requester repeats
after ``request_retry``) are simply dropped when lost or partitioned.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sagachain.errors import InputError


class Latency(Protocol):
    """A latency distribution for one message from ``src`` to ``dst``, in ms."""

    def draw(self, rng: random.Random, src: str, dst: str) -> float: ...


@dataclass(frozen=True)
class Constant:
    ms: float

    def draw(self, rng: random.Random, src: str, dst: str) -> float:
        return self.ms


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise InputError(f"Uniform latency needs 0 <= low <= high, got {self.low}, {self.high}")

    def draw(self, rng: random.Random, src: str, dst: str) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class LogNormal:
    """Heavy-tailed latency, as measured on wide-area links: ``median`` ms, shape ``sigma``."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        if self.median <= 0 or self.sigma < 0:
            raise InputError(f"LogNormal latency needs median > 0 and sigma >= 0, got {self.median}, {self.sigma}")

    def draw(self, rng: random.Random, src: str, dst: str) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)


@dataclass(frozen=True)
class Regions:
    """Shards placed in regions; latency by pair of regions (either order), ``local`` within one."""

    placement: Mapping[str, str]
    between: Mapping[tuple[str, str], Latency]
    local: Latency = Constant(5)

    def draw(self, rng: random.Random, src: str, dst: str) -> float:
        a, b = self._region(src), self._region(dst)
        if a == b:
            return self.local.draw(rng, src, dst)
        pair = self.between.get((a, b)) or self.between.get((b, a))
        if pair is None:
            raise InputError(f"no latency given between regions {a!r} and {b!r}; add it to Regions.between")
        return pair.draw(rng, src, dst)

    def _region(self, shard: str) -> str:
        try:
            return self.placement[shard]
        except KeyError:
            raise InputError(f"shard {shard!r} has no region in Regions.placement") from None


@dataclass(frozen=True)
class NetworkModel:
    """What a scenario sets with ``s.network(...)``.

    ``bandwidth`` is bytes per millisecond on each link (None: unlimited);
    ``fanout`` is how many shards each shard forwards a final block to (None:
    the producer sends it to every shard directly); ``loss`` is the chance that
    one transmission attempt is lost; ``retry_ms`` the retransmission timeout.
    """

    latency: Latency = Uniform(40, 50)
    loss: float = 0.0
    retry_ms: int = 200
    bandwidth: float | None = None
    fanout: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.loss < 1:
            raise InputError(f"network loss must be in [0, 1), got {self.loss}")
        if self.fanout is not None and self.fanout < 2:
            raise InputError(f"gossip fanout must be at least 2, got {self.fanout}")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise InputError(f"bandwidth must be positive bytes per ms, got {self.bandwidth}")


@dataclass
class Network:
    """Draws delays for the simulator's messages; knows the current partition."""

    model: NetworkModel
    rng: random.Random
    shards: int = 1
    groups: list[frozenset[str]] = field(default_factory=list)
    sent: int = 0
    lost: int = 0

    def partition(self, groups: list[list[str]]) -> None:
        """Split the shards: messages cross between two groups only after ``heal``."""
        self.groups = [frozenset(g) for g in groups]

    def heal(self) -> None:
        self.groups = []

    def reachable(self, src: str, dst: str) -> bool:
        return not self.groups or any(src in g and dst in g for g in self.groups)

    def latency(self, src: str, dst: str) -> int:
        return max(1, round(self.model.latency.draw(self.rng, src, dst)))

    def send(self, src: str, dst: str, size: int = 0, reliable: bool = True) -> int | None:
        """Delay until a message from ``src`` reaches ``dst``; None if it is lost (unreliable only).

        A reliable message across a partition also returns None: the caller
        holds it and sends it again when the partition heals.
        """
        self.sent += 1
        if not self.reachable(src, dst):
            self.lost += 1
            return None
        delay = self.latency(src, dst) + self._transfer(size)
        while self.model.loss and self.rng.random() < self.model.loss:
            self.lost += 1
            if not reliable:
                return None
            delay += self.model.retry_ms + self.latency(src, dst)
        return delay

    def gossip_hops(self) -> int:
        """Hops a final block takes to reach any other shard under the fan-out."""
        if self.model.fanout is None or self.shards <= 2:
            return 1
        return max(1, math.ceil(math.log(self.shards - 1) / math.log(self.model.fanout)))

    def gossip(self, src: str, dst: str, size: int) -> int | None:
        """Delay of a final block's gossip from ``src`` to ``dst``: one reliable send per hop."""
        total = 0
        for _ in range(self.gossip_hops()):
            hop = self.send(src, dst, size)
            if hop is None:
                return None
            total += hop
        return total

    def _transfer(self, size: int) -> int:
        if self.model.bandwidth is None or size <= 0:
            return 0
        return math.ceil(size / self.model.bandwidth)
