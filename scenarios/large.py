"""Large: a chain at the scale of a real deployment, on one 2-core machine.

Question: does the simulator, and the protocol's account placement, hold up
with about a thousand nodes, 64 shards and a million accounts, and what does
a transaction cost in latency and account transfers at that size?

What it varies (``--set NAME=VALUE``):

- ``accounts`` (1000000): funded public accounts, spread over the public shards.
- ``shards`` (64): shards in all; two of them form the enclave ``bank``.
- ``nodes`` (16): committee nodes per shard (64 x 16 = 1024 nodes).
- ``transactions`` (100000): open transfers, Zipf-popular senders and
  receivers (``zipf``, 0.6; at 1.1 a few hot accounts serialize most of the
  load and throughput collapses), arriving steadily over ``load_ms`` (100000).
- ``enclave_share`` (0.05): share of the transactions that are enclave
  transactions on the bank's vaults.
- ``duration`` (130000): virtual run time.
- ``crypto`` (``modelled``): keys and signatures are hash stand-ins whose
  cost is charged in virtual time (docs/SIMULATOR.md); ``real`` computes
  every Ed25519 signature and takes several times longer.

How to read the result: the summary table's throughput, latency and the
transfer split (release + gossip + acquire); ``plots/throughput.png``,
``plots/latency.png`` and ``plots/transfers.png`` over time; results.json
``crypto`` says which mode ran, ``wall_seconds`` how long it took. Audit the
chain with ``sagachain audit OUT/chain.sgc --crypto modelled``. The
benchmark figures for this scenario (at reduced size for CI, and at full
size) are in README.md, made by ``python benchmarks/bench_scale.py``.
"""

from sagachain.sim import Scenario
from sagachain.world.workloads import Steady, Zipf, mix

VAULT = '''
class Vault(EnclaveAccount_bank):
    ALLOW = {"deposit": "any"}
    def deposit(self, amount):
        self.total = self.total + amount
'''


def build(s: Scenario) -> None:
    accounts = s.param("accounts", 1_000_000)
    shards = s.param("shards", 64)
    nodes = s.param("nodes", 16)
    transactions = s.param("transactions", 100_000)
    load_ms = s.param("load_ms", 100_000)
    s.crypto_mode(s.param("crypto", "modelled"))
    s.configure(duration=s.param("duration", 130_000), block_interval=1_000, latency=40, jitter=20, sample=5_000)
    s.public_shards(shards - 2, nodes=nodes)
    s.enclave("bank", shards=2, nodes=nodes)
    names = [f"a{i}" for i in range(accounts)]
    for name in names:
        s.account(name, balance=100_000)
    s.enclave_account("bank", "bank_admin")
    s.private_class("bank", "Vault", VAULT, owner="bank_admin")
    vaults = [f"vault{i}" for i in range(8)]
    for vault in vaults:
        s.enclave_account("bank", vault, cls="Vault", total=0)
    share = s.param("enclave_share", 0.05)
    mix(
        s,
        transactions,
        start=100,
        end=100 + load_ms,
        open=1 - share,
        enclave=share,
        mixed=0.0,
        enclave_accounts=vaults,
        public_accounts=names,
        popularity=Zipf(s.param("zipf", 0.6)),
        arrivals=Steady(),
        enclave_script="v.deposit({amount})",
    )
