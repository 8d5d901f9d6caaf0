"""The deterministic simulator: scenarios, virtual time, the shard machines' driver."""

from sagachain.sim.scenario import Scenario

__all__ = ["Scenario"]
