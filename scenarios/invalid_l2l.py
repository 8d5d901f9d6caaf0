"""Invalid L2L: a public shard's colluding committee takes an enclave account it may not own (L2L-2).

Question: L2L-2 says an enclave account may only ever live on its own
enclave's shards. When the committee of public shard ``P0`` colludes to
acquire the enclave account ``vault_a`` (an acquire entry backed by no
release), does the auditor name L2L-2, and what do honest leaders do with
requests and transactions that would break the same rule?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``thief`` (``P0``): the misbehaving public shard; ``target``
  (``vault_a``) the enclave account it takes; ``at_height`` (4) the height
  of the block carrying the theft, ``count`` (1) how many blocks repeat it.
- ``transfers`` (40): open transfers between public wallets.
- ``enclave_txs`` (16): ``v.record(n)`` calls on the two vaults, so that
  transactions keep needing the stolen account after the theft.
- ``duration`` (15000) virtual ms.

How to read the result: ``sagachain audit OUT/chain.sgc`` exits 1; its
violations table names L2L-2 at ``P0`` height ``at_height`` ("enclave
account vault_a of acme assigned to shard P0, which cannot execute it"),
together with L2L-1 and L2L-3 for the same acquire entry (it names no
pending release; the owner never released the account). The summary
table's ``audit of the chain`` row says the same. Nothing is ignored: the
thief is a public shard, so its block is reported, not dropped.

What the honest shards do afterwards shows in ``results.json``:

- ``metrics.rejected_transactions`` counts transactions refused before
  execution, by rule. After the theft the simulator routes ``vault_a``'s
  transactions to its new holder ``P0``, whose honest leader refuses them
  under CMI-2 (an enclave transaction sent to a shard outside the
  enclave); with seed 1, ``CMI-2: 4``. ``acme/0`` asks ``P0`` for the
  account back, but ``P0`` holds no state to release and ignores the
  request, so ``vault_a`` is lost to the enclave (``committed ... enclave``
  11 of 16 with seed 1; all 16 with ``--set at_height=100000``, i.e.
  without the theft).
- The ``cross`` parameter (2) submits that many transactions touching both
  ``acme`` and a second enclave ``beta`` (signed by ``outsider``): every
  leader refuses them under CMI-4, so ``CMI-4: 2``, and they never reach
  the chain.
- The other leader-side ignore of this rule, ``ShardMachine.on_request``:
  an honest owner ignores an L2L request for an enclave account coming from
  a shard outside that enclave and records it under ``L2L-2``. Honest
  routing never makes a public shard ask for one, so it stays at 0 here.
- ``metrics.rejected_blocks`` shows ``CMI-1: 1``: ``acme/0`` had built a
  block on ``vault_a`` just before the theft became final; validated after
  it, the proposal fails (the account is owned by ``P0``) and is dropped.

Each stream of transactions has its own signer (``sponsor_a``,
``sponsor_b``, ``outsider``) because a shard runs a sender's transactions
only in nonce order: once one is refused, every later transaction of the
same sender waits for ever, and a shared signer would stall the whole
enclave.
"""

from sagachain.sim import Scenario
from sagachain.world import recipes

def build(s: Scenario) -> None:
    duration = s.param("duration", 15_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10)
    s.public_shards(2)
    s.enclave("acme", shards=2)
    s.enclave("beta", shards=1)
    people = recipes.people(s, 12)
    # one signer per stream of transactions: see the docstring
    recipes.enclave_vaults(s, "acme", ["acme/0", "acme/1"], payers=("sponsor_a", "sponsor_b", "outsider"))
    s.enclave_account("beta", "beta_admin")
    s.private_class("beta", "Box", recipes.recording_class("beta", "Box"), owner="beta_admin")
    s.enclave_account("beta", "beta_box", cls="Box", total=0)

    end = duration * 2 // 3
    s.random_transfers(s.param("transfers", 40), start=200, end=end, accounts=people)
    for _ in range(s.param("enclave_txs", 16)):
        vault = s.rng.choice(["vault_a", "vault_b"])
        s.transaction(s.rng.randrange(200, end), "sponsor" + vault[-2:], f"v.record({s.rng.randint(1, 99)})", {"v": vault})
    for i in range(s.param("cross", 2)):
        s.transaction(1_000 + 2_000 * i, "outsider", "v.record(1)\nw.record(2)", {"v": "vault_b", "w": "beta_box"})
    s.misbehave(
        s.param("thief", "P0"), "steal_account",
        at_height=s.param("at_height", 4), count=s.param("count", 1), target=s.param("target", "vault_a"),
    )
