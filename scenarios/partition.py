"""Partition and recovery: the network splits, heals, and a committee crashes and restarts.

Question: when the shards are cut into two groups for a while, and later a
shard loses enough committee members to lose its quorum (SH-1) and then gets
them back, does the chain stall only where it must, catch up after the heal
and the restart, lose no transaction and stay well-formed?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``split_at`` (5000) / ``heal_at`` (10000): virtual ms of the partition and
  its heal. The groups are ``{P0, acme/0}`` and ``{P1, P2, acme/1}``: final
  blocks, votes' gossip and L2L requests do not cross between them until the
  heal (reliable messages are held and delivered then; L2L requests are
  dropped and repeated).
- ``crash_at`` (14000) / ``restart_at`` (18000): ``crash_nodes`` (2) of
  ``P1``'s 4 committee members go down, which leaves no quorum, then come
  back.
- ``loss`` (0.02): the chance that one transmission attempt is lost
  (retransmitted after ``retry_ms``, 200 ms).
- ``transfers`` (150) open transfers over [200, ``load_ms`` (22000)) and
  ``enclave_txs`` (30) enclave calls; ``duration`` (40000) virtual ms.

How to read the result: ``OUT/plots/throughput.png`` dips while the
partition lasts (with seed 1 from about 7 tx/s to 1 tx/s by 10 s:
transactions that need an account on the far side wait), then shows a
catch-up after the heal; the crash of ``P1`` shows less, since the other two
public shards keep going and only ``P1``'s queue waits. ``latency.png``
shows the latency of what commits after each outage climbing by about its
length; ``queue.png`` the backlog building and draining; ``shards.png`` the
public shards producing blocks, one fewer between ``crash_at`` and
``restart_at``. In ``results.json``: ``network.lost_attempts`` counts the
transmission attempts lost, to the partition (held or dropped) and to
``loss``, out of ``network.messages`` (70 of 1129 with seed 1);
``metrics.latency_ms`` holds the outages in its p50 / p99 (4.4 / 15.3 s with
seed 1, against 1.6 / 10.2 s for the baseline below); and
``metrics.committed`` adds up to ``metrics.submitted`` (nothing is lost,
only delayed: 150 open + 30 enclave). ``timeseries.csv`` has the same per
second (``tx_per_s``, ``queued``, ``queue_age_ms``, ``public_shards``).
``sagachain audit OUT/chain.sgc`` judges the chain well-formed. Compare with
``--set heal_at=5001 --set restart_at=14001`` for a baseline without
outages.
"""

from sagachain.sim import Scenario
from sagachain.world import recipes
from sagachain.sim.network import Uniform

def build(s: Scenario) -> None:
    s.configure(duration=s.param("duration", 40_000), block_interval=500)
    s.network(latency=Uniform(40, 60), loss=s.param("loss", 0.02), retry_ms=200)
    s.public_shards(3)
    s.enclave("acme", shards=2)
    people = recipes.people(s, 24)
    vaults = recipes.enclave_vaults(s, "acme", ["acme/0", "acme/1"])

    load_ms = s.param("load_ms", 22_000)
    recipes.traffic(s, people, vaults, s.param("transfers", 150), s.param("enclave_txs", 30), load_ms)

    s.partition(s.param("split_at", 5_000), ["P0", "acme/0"], ["P1", "P2", "acme/1"])
    s.heal(s.param("heal_at", 10_000))
    s.crash(s.param("crash_at", 14_000), "P1", nodes=s.param("crash_nodes", 2), restart=s.param("restart_at", 18_000))
