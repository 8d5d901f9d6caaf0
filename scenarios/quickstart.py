"""Quickstart: one run that exercises every kind of transaction and a transfer of accounts.

Question: does a small chain with two public shards and one enclave of two
shards, carrying open, enclave and mixed transactions, stay well-formed while
accounts move between shards?

How to read the result: the summary table counts committed transactions per
kind, blocks per shard, account releases and acquires (L2L), and the coinbase
by shard kind. ``sagachain audit OUT/chain.sgc`` should then list every rule
it checked with zero violations. Give it the enclave's sealed state and key
(``--enclave-state OUT/enclaves/acme.sealed --enclave-key OUT/enclaves/acme.key``)
and it also re-executes the enclave's transactions (TX-6).
"""

from sagachain.sim import Scenario

WALLET = '''
class Wallet(ClassAccount):
    ALLOW = {"deposit": "any", "send": "signer"}
    def deposit(self, amount):
        require(amount > 0, "deposit must be positive")
        self.received = self.received + amount
    def send(self, to, amount):
        self.pay(to, amount)
        to.deposit(amount)
'''

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

PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


def build(s: Scenario) -> None:
    s.configure(duration=30_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(2, nodes=4)
    s.enclave("acme", shards=2, nodes=4)
    s.open_class("Wallet", WALLET)
    for name in PEOPLE:
        s.account(name, balance=1_000_000, cls="Wallet", received=0)
    s.enclave_account("acme", "acme_admin")
    s.private_class("acme", "Treasury", TREASURY, owner="acme_admin")
    s.enclave_account("acme", "vault_a", cls="Treasury", shard="acme/0", total=0, entries=0, paid=0, memo=f"acme-secret-{s.seed}")
    s.enclave_account("acme", "vault_b", cls="Treasury", shard="acme/1", total=0, entries=0, paid=0, memo="ledger of acme")

    s.random_transfers(s.param("transfers", 40), start=200, end=15_000)
    for i in range(12):
        at = 1_000 + i * 1_000
        payer = s.rng.choice(PEOPLE)
        vault = "vault_a" if i % 2 == 0 else "vault_b"
        s.transaction(at, payer, f"vault.record({s.rng.randint(1, 99)})", {"vault": vault})
    for i in range(6):
        src, dst = s.rng.sample(PEOPLE, 2)
        s.transaction(2_500 + i * 2_000, src, f"vault.payout(src, dst, {s.rng.randint(1, 50)})", {"vault": "vault_a", "src": src, "dst": dst})
    for i in range(3):
        s.transaction(4_000 + i * 4_000, "alice", "a.record(1)\nb.record(2)", {"a": "vault_a", "b": "vault_b"})
    for i in range(8):
        src, dst = s.rng.sample(PEOPLE, 2)
        s.transaction(600 + i * 1_700, src, f"src.send(dst, {s.rng.randint(1, 30)})", {"src": src, "dst": dst})
