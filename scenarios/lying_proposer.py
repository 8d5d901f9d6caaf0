"""A lying proposer: one member of an enclave committee proposes blocks whose hashes or payouts its transactions do not give.

Question: when one member of an enclave shard's committee tampers with its
own proposals (``lie``: ``forge_state`` claims an output state the
transaction does not produce, ``wrong_log`` a log hash its execution does not
give, ``inflate_payout`` a mixed payout of 50,000 where the script pays 5,
with the public changes still summing to zero), do the honest members catch
every lie by re-executing the proposal on their own copy of the enclave state
(TX-6), does the next member build the height instead, and does the chain
that comes out audit clean, with the enclave's state and key as well?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``lie`` (forge_state): the kind of lie, one of ``forge_state``,
  ``inflate_payout``, ``wrong_log``.
- ``at_height`` (2): the liar is the member proposing this height of
  ``acme/0`` in its first round.
- ``count`` (3): how many lies it tells (each time it is a round's proposer
  of a block holding something to lie about).
- ``payouts`` (12): mixed ``v.payout(src, dst, 5)`` calls, each paying 5
  from one public wallet to another through the vault.
- ``records`` (12): enclave-only ``v.record(n)`` calls.
- ``transfers`` (30): open transfers on the public shards.
- ``duration`` (20000) virtual ms.

How to read the result: ``results.json`` ``metrics.lies`` shows ``told``
equal to ``refused`` (every lie refused before any vote for it) and
``metrics.rejected_blocks`` names ``TX-6`` that many times; every submitted
transaction still commits (the next round's proposer includes what the
refused proposal held). ``sagachain audit OUT/chain.sgc --enclave-state
OUT/enclaves/acme.sealed --enclave-key OUT/enclaves/acme.key`` is
well-formed, its TX-6 line re-executing every enclave block without a
violation: no lie reached the chain.
"""

from sagachain.sim import Scenario
from sagachain.world import recipes

TREASURY = '''
class Treasury(EnclaveAccount_acme):
    ALLOW = {"record": "any", "payout": "any"}
    def record(self, amount):
        self.total = self.total + amount
    def payout(self, src, dst, amount):
        src.pay(dst, amount)
        self.paid = self.paid + amount
'''


def build(s: Scenario) -> None:
    duration = s.param("duration", 20_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10)
    s.public_shards(2)
    s.enclave("acme", shards=1)
    s.enclave_account("acme", "acme_admin")
    s.private_class("acme", "Treasury", TREASURY, owner="acme_admin")
    s.enclave_account("acme", "vault", cls="Treasury", shard="acme/0", total=0, paid=0)
    walkers = recipes.people(s, 6)
    payers = recipes.people(s, 4, prefix="payer")
    end = duration * 3 // 5
    s.random_transfers(s.param("transfers", 30), start=200, end=end, accounts=walkers)
    for i in range(s.param("records", 12)):
        s.transaction(s.rng.randrange(200, end), payers[i % len(payers)], f"v.record({s.rng.randint(1, 99)})", {"v": "vault"})
    for i in range(s.param("payouts", 12)):
        src, dst = payers[i % len(payers)], payers[(i + 1) % len(payers)]
        s.transaction(s.rng.randrange(200, end), src, "v.payout(a, b, 5)", {"v": "vault", "a": src, "b": dst})
    s.misbehave("acme/0", s.param("lie", "forge_state"), at_height=s.param("at_height", 2), count=s.param("count", 3))
