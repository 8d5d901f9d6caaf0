"""Breakaway: an enclave declares it leaves the chain (LIFE-1) in the middle of a run.

Question: when an enclave's operator announces a breakaway, does the chain
honour the enclave's blocks up to and including the declaration, ignore
every later block of its shards, and stay well-formed, while the public
shards carry on undisturbed?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``at`` (8100): virtual ms at which ``acme`` declares its breakaway (a
  ``BreakawayEntry`` in the next block of ``acme/0``).
- ``transfers`` (60): open transfers between public wallets over the run.
- ``enclave_txs`` (24): ``v.record(n)`` calls on the enclave's two vaults,
  spread over the whole run, so some arrive after the breakaway.
- ``duration`` (20000) virtual ms.

How to read the result: in ``results.json``, ``metrics.broken_away`` maps
``acme`` to ``acme/0#H`` (the block carrying the declaration; with seed 1,
``acme/0#5``), ``metrics.blocks`` shows both enclave shards stopping there,
and ``metrics.ignored_blocks`` counts the enclave blocks that still reached
the chain after the declaration (with seed 1, one block of ``acme/1`` that
was in flight; other ``at`` values give 0 or 1: after declaring, the enclave
stops distributing blocks). The summary table shows the same in its
``blocks (ignored)`` row, and ``committed ... enclave`` counts only the
enclave transactions honoured before the breakaway (12 of 24 with seed 1)
while every open transfer commits. ``sagachain audit OUT/chain.sgc`` exits
0, well-formed: an honest breakaway breaks no rule; its "ignored blocks"
table lists any later ``acme`` block (never a public one) and its last
lines give the enclave's status ("enclave acme: broken-away at acme/0#H").
``plots/throughput.png`` shows the enclave line stopping at ``at`` while
the open line goes on.
The enclave's transactions are paid by a ``sponsor`` account of their own,
which an enclave shard may still hold when it leaves: it leaves with the
enclave, which is why the public transfers do not use it.
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
    recipes.traffic(s, people, vaults, s.param("transfers", 60), s.param("enclave_txs", 24), end)
    s.breakaway(s.param("at", 8_100), "acme")
