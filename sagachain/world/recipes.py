"""Building blocks that many scenarios share: an enclave with vaults, and steady traffic.

Most questions about enclaves need the same stage: funded public accounts, an
enclave whose private class keeps a running total, a vault on each of its
shards, a sponsor account that signs and pays for the enclave's transactions,
open transfers among the public accounts, and enclave transactions on the
vaults. A scenario builds that stage with two calls and spends its own lines
on what it asks (a fault, a misbehaviour, a network). The recipes take only
``Declarations``, so the devnet (``node.devnet``) builds its people with the
same calls as a simulated scenario does.
"""

from __future__ import annotations

from sagachain.world.declarations import Declarations


def recording_class(enclave: str, name: str = "Treasury") -> str:
    """A private class of ``enclave`` whose ``record(amount)`` adds to ``self.total``."""
    return f'''
class {name}(EnclaveAccount_{enclave}):
    ALLOW = {{"record": "any"}}
    def record(self, amount):
        self.total = self.total + amount
'''


def people(s: Declarations, count: int, balance: int = 1_000_000, prefix: str = "user") -> list[str]:
    """``count`` funded public accounts named ``prefix0``, ``prefix1``, ..."""
    names = [f"{prefix}{i}" for i in range(count)]
    for name in names:
        s.account(name, balance=balance)
    return names


def enclave_vaults(s: Declarations, enclave: str, shards: list[str], cls: str = "Treasury", payers: tuple[str, ...] = ("sponsor",)) -> list[str]:
    """An admin, a recording private class, one vault per shard of ``enclave``, and funded payers.

    Vaults are named ``vault_a``, ``vault_b``, ... (a letter per shard, in
    ``shards`` order). Each payer is a public account of its own, so that
    enclave traffic never waits on the nonces of the open traffic's senders.
    """
    s.enclave_account(enclave, f"{enclave}_admin")
    s.private_class(enclave, cls, recording_class(enclave, cls), owner=f"{enclave}_admin")
    vaults = []
    for index, shard in enumerate(shards):
        vault = f"vault_{chr(ord('a') + index)}"
        s.enclave_account(enclave, vault, cls=cls, shard=shard, total=0)
        vaults.append(vault)
    for payer in payers:
        s.account(payer, balance=1_000_000)
    return vaults


def traffic(s: Declarations, accounts: list[str], vaults: list[str], transfers: int, enclave_txs: int, end: int, payer: str = "sponsor", start: int = 200) -> None:
    """``transfers`` open payments among ``accounts`` and ``enclave_txs`` records on random vaults,
    all arriving uniformly in [start, end)."""
    s.random_transfers(transfers, start=start, end=end, accounts=accounts)
    for _ in range(enclave_txs):
        vault = s.rng.choice(vaults)
        s.transaction(s.rng.randrange(start, end), payer, f"v.record({s.rng.randint(1, 99)})", {"v": vault})
