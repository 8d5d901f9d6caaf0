"""Regions: a wide-area deployment, with heavy-tailed latency between regions and gossip fan-out.

Question: when shards sit in three regions (``eu``, ``us``, ``ap``) with a
few ms between shards of one region and a heavy-tailed (log-normal) delay
between regions, how much does commit latency grow over a single data
centre, and where does an account transfer spend its time: waiting for the
release, in gossip across regions, or in the acquire? What does a gossip
fan-out (each shard forwarding final blocks to a few others) add in hops?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``wan_ms`` (80): median latency between two regions (``eu``-``ap`` is
  twice it); ``sigma`` (0.5): the log-normal shape, larger is a heavier
  tail; ``local_ms`` (5): latency within a region.
- ``fanout`` (0: none, every shard sends final blocks to all directly):
  with 2 or more, final blocks travel ``ceil(log(shards - 1) /
  log(fanout))`` hops.
- ``single`` (false): put every shard in ``eu``, the single-data-centre
  baseline.
- ``transfers`` (200) open transfers and ``enclave_txs`` (30) enclave
  calls over [200, ``load_ms`` (20000)); ``duration`` (35000) virtual ms.

How to read the result: the summary table's ``commit latency p50 / p99``
and ``transfer mean ms: release + gossip + acquire`` rows; in
``results.json``, ``metrics.latency_ms`` and ``metrics.transfer_ms``
(``release``: first request until the release block is final; ``gossip``:
until the receiving shard learns of it, the part the WAN and the fan-out
lengthen directly; ``acquire``: until its acquire block is final; ``total``)
and ``network.gossip_hops`` (1 without fan-out). ``OUT/plots/latency.png``
shows the latency percentiles over time and ``transfers.png`` the moves.
Compare ``--set single=true`` (gossip about ``local_ms``) with the default
(gossip near ``wan_ms``, its p99 stretched by ``sigma``), and ``--set
fanout=2`` (8 shards: 3 hops). With seed 1: p50 3.5 s and transfers of
1465 + 102 + 312 ms by default; p50 1.5 s and 1339 + 5 + 243 ms with
``single=true``; p50 3.9 s and 1819 + 302 + 247 ms with ``fanout=2``, where
3 of the 200 transfers are still queued at the end. A sweep ``--grid wan_ms=20,80,160 --grid
fanout=0,2`` shows how latency and transfer time scale. The chain is
well-formed whatever the network (``sagachain audit OUT/chain.sgc``).
"""

from sagachain.sim import Scenario
from sagachain.world import recipes
from sagachain.sim.network import Constant, LogNormal, Regions

def build(s: Scenario) -> None:
    s.configure(duration=s.param("duration", 35_000), block_interval=500)
    public = s.public_shards(6)
    enclave = s.enclave("acme", shards=2)
    wan, sigma = s.param("wan_ms", 80.0), s.param("sigma", 0.5)
    single = s.param("single", False)
    regions = ["eu", "us", "ap"]
    placement = {sid: "eu" if single else regions[i % 3] for i, sid in enumerate(public)}
    placement.update({enclave[0]: "eu", enclave[1]: "eu" if single else "us"})
    fanout = s.param("fanout", 0)
    s.network(
        latency=Regions(
            placement=placement,
            between={
                ("eu", "us"): LogNormal(wan, sigma),
                ("us", "ap"): LogNormal(wan, sigma),
                ("eu", "ap"): LogNormal(2 * wan, sigma),
            },
            local=Constant(s.param("local_ms", 5.0)),
        ),
        fanout=fanout if fanout >= 2 else None,
    )
    people = recipes.people(s, 30)
    vaults = recipes.enclave_vaults(s, "acme", enclave)
    load_ms = s.param("load_ms", 20_000)
    recipes.traffic(s, people, vaults, s.param("transfers", 200), s.param("enclave_txs", 30), load_ms)
