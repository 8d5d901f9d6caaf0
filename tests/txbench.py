"""Run single transactions against a chain the way a validator does: execute on the shard
that owns the accounts, judge the entry with every registered entry rule, apply it.

For tests of the system classes (rosters, mailboxes, the registry) that need many small
steps and their verdicts, without the simulator's timing in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.block import Block, BlockHeader, Head, OpenEntry, body_hash
from sagachain.core.ledger import ChainState
from sagachain.core.rules import Tools
from sagachain.core.rules.catalog import ENTRY, Violation, checks
from sagachain.core.tx import make_transaction
from sagachain.world.build import World

TOOLS = Tools()


def draft(chain: ChainState, shard: str, entry: object, time: int) -> Block:
    """A one-entry block at the shard's next height (unsigned: entry rules do not read the qc)."""
    height = chain.heads[shard] + 1
    header = BlockHeader(
        chain=chain.genesis_hash, shard=shard, height=height, parent=b"\0" * 32, time=time, producer=b"\0" * 32,
        committee=b"", body=body_hash([entry]), gas_floor=0, gas_basis=(Head(shard=shard, height=height - 1),) if height > 1 else (),
        coinbase=0, fees=0, tax=0,
    )
    return Block(header=header, entries=(entry,), qc=())  # type: ignore[arg-type]


def entry_violations(chain: ChainState, block: Block, rule: str | None = None) -> list[Violation]:
    entry = block.entries[0]
    return [v for c in checks(ENTRY) if isinstance(entry, c.applies) and rule in (None, c.rule) for v in c.func(chain, block, 0, entry, TOOLS)]


@dataclass
class Bench:
    world: World
    chain: ChainState
    nonces: dict[bytes, int] = field(default_factory=dict)
    time: int = 1_000

    @classmethod
    def of(cls, world: World) -> Bench:
        return cls(world, world.chain())

    def send(self, sender: bytes, accounts: dict[str, bytes], script: str, payer: bytes) -> tuple[OpenEntry, list[str]]:
        """Run one transaction, judge it, apply it: (its entry, the rules it broke)."""
        from shards.execution import execute

        self.nonces[sender] = self.nonces.get(sender, 0) + 1
        tx = make_transaction(
            key=self.world.account_keys[sender], sender=sender, nonce=self.nonces[sender], gas_limit=5_000_000,
            gas_payer=payer, accounts=accounts, script=script,
        )
        shard = self.chain.owner[next(iter(accounts.values()))]
        entry = execute(self.chain, shard, tx, time=self.time).entry
        assert isinstance(entry, OpenEntry)
        block = draft(self.chain, shard, entry, self.time)
        broken = [v.rule for v in entry_violations(self.chain, block)]
        self.chain.apply_block(block)
        self.time += 500
        return entry, broken


def ok(result: tuple[OpenEntry, list[str]]) -> OpenEntry:
    """The entry of a transaction that succeeded and broke no rule."""
    entry, broken = result
    assert entry.ok, entry.error
    assert broken == []
    return entry


def refused(result: tuple[OpenEntry, list[str]], rule: str, words: str) -> None:
    """The transaction failed on ``rule`` with ``words`` in its error, and its entry is still well-formed."""
    entry, broken = result
    assert not entry.ok and entry.error is not None
    assert entry.error.startswith(rule) and words in entry.error, entry.error
    assert broken == []
