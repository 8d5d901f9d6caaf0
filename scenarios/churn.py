"""Churn: what membership changes cost an enclave, per key distribution strategy (MEM-3).

Question: an enclave of ``size`` members loses and gains members and rotates
node keys. Every such change starts an epoch with a fresh key that must reach
every member, and no removed node. How many bytes of sealed key material does
each change put on chain, and how long until every member holds the new key,
with ``seal-to-all`` (one box per member) against ``key-tree`` (about log2 N
boxes)?

Set-up: one public shard (the roster account and the enclave's operator live
there), one enclave with one shard, a 4-node committee and ``size - 4``
seatless MEMBERs (keys and state, no vote). Roster changes are real
transactions signed by the enclave's operator, one at a time, each submitted
once the previous one is final; joins go by application and approval.

What it varies (``--set NAME=VALUE``):

- ``size`` (64): members at the start, committee included (at least 4).
- ``strategy`` (key-tree): ``seal-to-all`` or ``key-tree``.
- ``changes`` (12): roster changes, a mix of joins, removals and key rotations
  (a third each, joins getting the remainder), at random times.
- ``enclave_txs`` (20): enclave transactions meanwhile, so that the enclave's
  shard keeps producing blocks, signed by whoever the roster seats (MEM-1).
  They pay the GAS-3 floor, the rolling average gas of recent transactions,
  which large roster transactions raise: compare ``metrics.gas_charged``
  between the strategies.

How to read the result: the run's summary prints a table of epoch changes per
kind (add, remove, rotate): members after the change, sealed bytes, bytes of
the transaction's entry on chain (the key material appears in the script and in
the epoch record), ms from the final block until every member held the key,
ms from the committer starting to seal until then, and the members that did
not get the key and removed nodes that did (both must be 0). ``results.json``
has every change under ``metrics.membership.changes`` and means under
``metrics.membership.summary``. ``sagachain audit OUT/chain.sgc`` checks every
roster change against MEM-1..MEM-3. To compare the strategies over sizes:

    sagachain sweep scenarios/churn.py --grid size=4,16,64,256,1000 \\
        --grid strategy=seal-to-all,key-tree --seeds 1 \\
        --metric metrics.membership.summary.sealed_bytes_mean \\
        --metric metrics.membership.summary.hold_ms_mean --out out/churn-sweep
"""

from sagachain.errors import InputError
from sagachain.sim import Scenario
from sagachain.world import recipes

COMMITTEE = 4


def build(s: Scenario) -> None:
    size = s.param("size", 64)
    strategy = s.param("strategy", "key-tree")
    changes = s.param("changes", 12)
    enclave_txs = s.param("enclave_txs", 20)
    if size < COMMITTEE:
        raise InputError(f"size={size}: the enclave's committee alone has {COMMITTEE} members; set size >= {COMMITTEE}")
    per_kind = changes // 3
    window = max(10_000, changes * 2_000)
    s.configure(duration=window + 20_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(1, nodes=4)
    s.enclave("club", shards=1, nodes=COMMITTEE, key_strategy=strategy, members=size - COMMITTEE, operator_balance=10**12)
    s.churn("club", start=1_000, end=1_000 + window, joins=changes - 2 * per_kind, removals=per_kind, rotations=per_kind)
    vaults = recipes.enclave_vaults(s, "club", ["club/0"], payers=())
    s.account("sponsor", balance=10**12)
    for _ in range(enclave_txs):  # the limit covers a GAS-3 floor raised by seal-to-all rekeys of 1,000 members
        s.transaction(s.rng.randrange(500, 1_000 + window), "sponsor", "v.record(1)", {"v": vaults[0]}, gas_limit=2_000_000)
