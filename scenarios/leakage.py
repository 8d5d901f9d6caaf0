"""Leakage: what can an outsider tell about an enclave's workload from the public chain alone?

Question: two runs differ only in what the enclave ``acme`` does, a light
workload (one-line ``v.record(n)`` calls) or a heavy one (loops of
``record`` over many steps, with some mixed transactions that pay public
accounts); the public traffic is the same. Which public signals (gas
charged, script and entry sizes, block sizes, timing, the accounts touched)
tell the two apart, and which does GAS-3 keep alike?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``workload`` (``light``): ``light`` or ``heavy``.
- ``steps`` (40): loop steps of a heavy transaction.
- ``mixed_share`` (0.25): under ``heavy``, the share of enclave transactions
  that are mixed (``v.payout(src, dst, n)``, touching public accounts).
- ``enclave_txs`` (30) and ``open_txs`` (80), submitted at the same
  times in both workloads (the times are drawn before the workload is
  chosen, so only the scripts differ); ``duration`` (25000) virtual ms.

How to read the result: run both workloads with the same seed, then compare
their chains (docs/LEAKAGE.md)::

    sagachain run scenarios/leakage.py --seed 1 --out out/light --set workload=light
    sagachain run scenarios/leakage.py --seed 1 --out out/heavy --set workload=heavy
    sagachain leakage out/light/chain.sgc
    sagachain leakage out/light/chain.sgc --compare out/heavy/chain.sgc --enclave acme

The first ``leakage`` prints each signal's samples for ``acme`` and the sets
it reveals (``touched``, ``users``, ``scripts``). The ``--compare`` table
gives, per signal, the KS statistic (Jaccard distance for a set), the
sample counts and the 5% bound. With seed 1: ``gas_charged``,
``gas_over_floor`` and ``at_floor`` give statistic 0 (GAS-3 charges by the
block and the floor, not by the work; ``gas_over_open_avg`` has no samples,
since the enclave's blocks carry no open transactions); ``script_bytes``,
``entry_bytes`` (statistic 1) and ``block_bytes`` separate the runs, and so
do the sets ``scripts`` and ``touched`` (Jaccard distance 1): the script is
public under TX-3, and a mixed transaction publishes the public accounts it
uses (TX-4; ``declared_public`` and ``public_updates`` have samples only in
the heavy run). ``mixed`` (7 of 30 heavy transactions) stays under its
bound at these counts: raise ``enclave_txs`` to see it separate too. Timing
(``tx_interarrival``, ``block_interval``) stays alike, because the
submission times are the same by construction.
Both chains are well-formed (``sagachain audit``); the plots
``gas.png`` and ``gas_floor.png`` of each run show the enclave charged the
open average or the floor in both.
"""

from sagachain.errors import InputError
from sagachain.sim import Scenario

TREASURY = '''
class Treasury(EnclaveAccount_acme):
    ALLOW = {"record": "any", "payout": "any"}
    def record(self, amount):
        self.total = self.total + amount
        self.entries = self.entries + 1
    def payout(self, src, dst, amount):
        src.pay(dst, amount)
        self.paid = self.paid + amount
'''

PEOPLE = [f"user{i}" for i in range(12)]


def build(s: Scenario) -> None:
    workload = s.param("workload", "light")
    if workload not in ("light", "heavy"):
        raise InputError(f"workload={workload!r}: choose light or heavy")
    duration = s.param("duration", 25_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10)
    s.public_shards(2)
    s.enclave("acme", shards=1)
    for name in PEOPLE:
        s.account(name, balance=1_000_000)
    payers = ["payer_a", "payer_b", "payer_c"]
    for name in payers:
        s.account(name, balance=1_000_000)
    s.enclave_account("acme", "acme_admin")
    s.private_class("acme", "Treasury", TREASURY, owner="acme_admin")
    s.enclave_account("acme", "vault", cls="Treasury", total=0, entries=0, paid=0)

    end = duration * 2 // 3
    # Everything random is drawn first, the same for both workloads.
    opens = [(s.rng.randrange(200, end), *s.rng.sample(PEOPLE, 2), s.rng.randint(1, 20)) for _ in range(s.param("open_txs", 80))]
    enclave = [(s.rng.randrange(200, end), s.rng.choice(payers), s.rng.randint(1, 99), s.rng.random(), s.rng.sample(payers, 2)) for _ in range(s.param("enclave_txs", 30))]
    steps = s.param("steps", 40)
    mixed_share = s.param("mixed_share", 0.25)

    for at, src, dst, amount in opens:
        s.transaction(at, src, f"a.pay(b, {amount})", {"a": src, "b": dst})
    for at, payer, n, draw, (src, dst) in enclave:
        if workload == "light":
            s.transaction(at, payer, f"v.record({n})", {"v": "vault"})
        elif draw < mixed_share:
            s.transaction(at, src, f"v.payout(src, dst, {n})", {"v": "vault", "src": src, "dst": dst})
        else:
            s.transaction(at, payer, f"for i in range({steps}):\n    v.record(i + {n})", {"v": "vault"}, gas_limit=max(20_000, 400 * steps))
