"""Withholding: an enclave shard keeps its off-chain state changes from the enclave's other shards.

Question: an enclave's leader on ``acme/0`` stops sending the off-chain
state changes of its blocks to the enclave's other shard. How long until the
other members notice, and what does the public chain show meanwhile?

What it varies (``--set NAME=VALUE``):

- ``from_height`` (4): the first block of ``acme/0`` whose changes are withheld
  (the leader withholds from then on).
- ``state_timeout`` (2000): how long, in virtual ms, a shard waits for a
  block's state changes after it received the block before it flags them as
  withheld.
- ``transfers`` (60), ``enclave_txs`` (30): the open and enclave traffic.
- ``moves`` (3): enclave transactions that touch both vaults at once, which
  forces a vault to move between the enclave's shards. A vault released by
  the withholder can never be acquired, because no other replica can match
  the state hash its release published.
- ``duration`` (25000): virtual run time.

How to read the result: results.json ``metrics.withholding`` gives the
blocks withheld, how often the other shard noticed, the first notice in ms
after the block was final (about ``state_timeout`` plus a network hop), and
who noticed. The summary's audit row says ``well-formed``: outsiders check
only well-formedness (TX-6), and the chain gives nothing away. Enclave
transactions that need a vault stuck in transit never commit; compare
``committed`` with ``submitted``. Run with ``--set from_height=100000`` for
the honest baseline, where nobody notices anything and everything commits.
"""

from sagachain.sim import Scenario
from sagachain.world import recipes


def build(s: Scenario) -> None:
    duration = s.param("duration", 25_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10, state_timeout=s.param("state_timeout", 2_000))
    s.public_shards(2)
    s.enclave("acme", shards=2)
    people = recipes.people(s, 12)
    vaults = recipes.enclave_vaults(s, "acme", ["acme/0", "acme/1"])
    end = duration * 2 // 3
    recipes.traffic(s, people, vaults, s.param("transfers", 60), s.param("enclave_txs", 30), end)
    for i in range(s.param("moves", 3)):
        s.transaction(2_000 + i * 4_000, "sponsor", "a.record(1)\nb.record(1)", {"a": "vault_a", "b": "vault_b"})
    s.misbehave("acme/0", "withhold", at_height=s.param("from_height", 4), count=1_000_000)
