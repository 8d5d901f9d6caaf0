"""One faulty committee member, under the real consensus: what does each fault cost?

Question: when every committee member runs the node's consensus machine
(``s.committees("members")``), what does one fault of one member, or of a
committee split in two, cost the shard it sits on: in rounds, in commit
latency, in messages? Does the shard keep deciding one block per height, with
every transaction committed and the chain well-formed?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``fault`` (equivocate): ``none``; ``crash`` (``nodes`` members of ``P0``
  stop at ``at`` ms and restart at ``until``: 1 of 4 leaves a quorum, 2 do
  not); ``split`` (``P0``'s committee is cut into members {0, 1} and {2, 3}
  from ``at`` to ``until``: no side has a quorum); ``silent`` (the member
  proposing height ``at_height`` of ``P0`` sends nothing for ``count``
  heights); ``equivocate`` (that member proposes two different blocks to the
  two halves of its committee whenever it proposes a new block, for
  ``count`` heights); ``lie`` (that member, on ``acme/0``, forges an enclave
  state hash: TX-6, see ``lying_proposer.py``).
- ``at`` (4000) / ``until`` (8000) ms, ``nodes`` (1), ``at_height`` (3),
  ``count`` (4).
- ``transfers`` (60) open transfers and ``enclave_txs`` (12) enclave calls
  over [200, ``load_ms`` (12000)); ``duration`` (25000) virtual ms.

How to read the result: ``results.json`` ``metrics.consensus`` has the
heights decided in each round (``decided_by_round``: a height decided in
round 1 or later paid one propose timeout per round before it), the
consensus messages sent and lost, the proposals refused, the equivocations
made and the members shown to have equivocated (``evidence``).
``metrics.latency_ms`` against ``--set fault=none`` gives the latency a
fault costs. A split or a crash of 2 stops ``P0`` until ``until``; a crash
of 1, a silent member, an equivocator or a liar cost rounds but no block.
``sagachain audit OUT/chain.sgc`` is well-formed in every case.
"""

from sagachain.sim import Scenario
from sagachain.world import recipes

FAULTS = ("none", "crash", "split", "silent", "equivocate", "lie")


def build(s: Scenario) -> None:
    s.configure(duration=s.param("duration", 25_000), block_interval=500, latency=40, jitter=10)
    s.committees("members")
    s.public_shards(2)
    s.enclave("acme", shards=2)
    people = recipes.people(s, 12)
    vaults = recipes.enclave_vaults(s, "acme", ["acme/0", "acme/1"])
    recipes.traffic(s, people, vaults, s.param("transfers", 60), s.param("enclave_txs", 12), s.param("load_ms", 12_000))

    fault = s.param("fault", "equivocate")
    at, until = s.param("at", 4_000), s.param("until", 8_000)
    at_height, count = s.param("at_height", 3), s.param("count", 4)
    if fault == "crash":
        s.crash(at, "P0", nodes=s.param("nodes", 1), restart=until)
    elif fault == "split":
        s.partition_members(at, "P0", [0, 1], [2, 3])
        s.heal(until)
    elif fault in ("silent", "equivocate"):
        s.misbehave("P0", fault, at_height=at_height, count=count)
    elif fault == "lie":
        s.misbehave("acme/0", "forge_state", at_height=at_height, count=count)
    elif fault != "none":
        from sagachain.errors import InputError

        raise InputError(f"fault {fault!r}: choose one of {', '.join(FAULTS)}")
