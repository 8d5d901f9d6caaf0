"""Over-minting: an enclave's leader mints more than MINT-3 allows, and the chain terminates the enclave (MINT-4).

Question: when the colluding committee of an enclave shard signs a block
whose coinbase exceeds the MINT-3 allowance, do the honest shards stop
honouring that enclave from that block on, does the rest of the chain carry
on, and does the auditor name the violation and list what it ignores?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``at_height`` (6): the height of ``acme/0``'s first over-minting block.
- ``count`` (1): how many consecutive blocks over-mint.
- ``transfers`` (60): open transfers between the public wallets, before and
  after the termination (the public shards keep going).
- ``enclave_txs`` (20): ``v.record(n)`` calls on the enclave's vaults; those
  that arrive after the termination are never honoured.
- ``duration`` (20000) virtual ms.

How to read the result: the summary table's ``blocks (ignored)`` row
counts the over-minting block as ignored; ``committed open / enclave``
shows every open transfer committed while only the enclave transactions
honoured before the termination count (with seed 1: 60 / 11 of 60 / 20);
``coinbase public / enclave`` leaves the forged coinbase out.
``results.json``: ``metrics.terminated`` maps ``acme`` to ``acme/0#H`` (the
over-minting block, H = ``at_height``), ``metrics.ignored_blocks`` counts
the ignored blocks, ``metrics.blocks`` shows both enclave shards stopping at
about that height, and ``supply`` still balances (MINT-5: the forged coin
never enters circulation). ``sagachain audit OUT/chain.sgc`` exits 1: its
violations table names MINT-3 at ``acme/0`` height H ("mints 501, at most 0
allowed"), its "ignored blocks" table lists that block ("over-minting block
of an enclave (MINT-4)") and any block of ``acme/0`` or ``acme/1`` that
still reached the chain after it, and its last lines say "enclave acme:
terminated at acme/0#H". Every public block is honoured and well-formed;
``plots/coinbase.png`` and ``throughput.png`` show the public shards
carrying on.

A side effect worth knowing: an enclave transaction's gas payer must sit on
the enclave's shard, so the public ``sponsor`` account that pays for them is
frozen if an enclave shard holds it at the termination (L2L-4 forbids
releases from a terminated enclave). That is why the transfers here are
between other accounts; make ``sponsor`` take part in them and those
transfers queue for ever.
"""

from sagachain.sim import Scenario
from sagachain.world import recipes

def build(s: Scenario) -> None:
    duration = s.param("duration", 20_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10)
    s.public_shards(2)
    s.enclave("acme", shards=2)
    people = recipes.people(s, 16)
    vaults = recipes.enclave_vaults(s, "acme", ["acme/0", "acme/1"])

    end = duration * 3 // 4
    recipes.traffic(s, people, vaults, s.param("transfers", 60), s.param("enclave_txs", 20), end)
    s.misbehave("acme/0", "overmint", at_height=s.param("at_height", 6), count=s.param("count", 1))
