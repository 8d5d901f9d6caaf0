"""Building chains for tests: run a scenario in memory, tamper with its blocks, audit the result.

A tampered block is re-signed by its whole committee and the chain is
re-linked (parents, genesis hash), so that the audit sees exactly the rule a
test means to break, and not merely a broken signature or parent link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sagachain.audit.auditor import AuditReport, audit_chain
from sagachain.core.block import Block, Vote, body_hash
from sagachain.core.chainfile import read_chain_bytes, write_chain
from sagachain.core.genesis import Genesis
from sagachain.sim.runner import SimResult, Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import World, build_world
from shards.enclave_store import EnclaveStore
from shards.tools import default_tools, tools_for

WALLET = '''
class Wallet(ClassAccount):
    ALLOW = {"deposit": "any", "send": "signer"}
    def deposit(self, amount):
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
    def payout(self, src, dst, amount):
        src.pay(dst, amount)
        self.paid = self.paid + amount
'''

CANARY = "canary-7f3a9c"
PEOPLE = ["alice", "bob", "carol", "dave"]


def small(s: Scenario, *, beta: bool = False, transfers: int = 12) -> None:
    """Two public shards, enclave acme of two shards (and optionally beta), every kind of transaction."""
    s.configure(duration=12_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(2, nodes=4)
    s.enclave("acme", shards=2, nodes=4)
    if beta:
        s.enclave("beta", shards=1, nodes=4)
        s.enclave_account("beta", "beta_box")
    s.open_class("Wallet", WALLET)
    for name in PEOPLE:
        s.account(name, balance=100_000, cls="Wallet", received=0)
    s.enclave_account("acme", "acme_admin")
    s.private_class("acme", "Treasury", TREASURY, owner="acme_admin")
    s.enclave_account("acme", "vault", cls="Treasury", shard="acme/0", total=0, paid=0, memo=CANARY)
    s.random_transfers(transfers, start=200, end=6_000)
    for i in range(4):
        s.transaction(700 + i * 1_200, PEOPLE[i % 4], f"v.record({i + 1})", {"v": "vault"})
    s.transaction(2_000, "alice", "v.payout(a, b, 5)", {"v": "vault", "a": "alice", "b": "bob"})
    s.transaction(1_500, "carol", "a.send(b, 3)", {"a": "carol", "b": "dave"})


@dataclass
class Run:
    world: World
    result: SimResult
    initial: dict[str, EnclaveStore]

    @property
    def genesis(self) -> Genesis:
        return self.world.genesis

    @property
    def blocks(self) -> list[Block]:
        return list(self.result.blocks)


def simulate(build: Callable[[Scenario], None], seed: int = 1) -> Run:
    scenario = Scenario(seed, name="test")
    build(scenario)
    world = build_world(scenario)
    initial = {e: store.copy() for e, store in world.stores.items()}
    result = Simulation(world, tools_for(scenario.crypto), None).run()
    return Run(world, result, initial)


def chain_bytes(tmp: Path, genesis: Genesis, blocks: list[Block]) -> bytes:
    path = tmp / "chain.sgc"
    write_chain(path, genesis, blocks)
    return path.read_bytes()


def audit(tmp: Path, genesis: Genesis, blocks: list[Block], enclaves: dict[str, EnclaveStore] | None = None) -> AuditReport:
    return audit_chain(read_chain_bytes(chain_bytes(tmp, genesis, blocks)), default_tools(), enclaves=enclaves)


def rules_broken(report: AuditReport) -> set[str]:
    return {v.rule for v in report.violations}


def sign(world: World, block: Block) -> Block:
    """The block with a fresh body hash and the votes of its whole committee (SH-1)."""
    header = replace(block.header, body=body_hash(list(block.entries)))
    unsigned = Block(header=header, entries=block.entries, qc=())
    committee = next(s.committee for s in world.genesis.shards if s.id == block.shard)
    votes = tuple(Vote(signer=n, signature=world.node_keys[n].sign(unsigned.hash)) for n in committee)
    return Block(header=header, entries=block.entries, qc=votes)


def relink(world: World, genesis: Genesis, blocks: list[Block]) -> list[Block]:
    """Re-chain every block onto ``genesis`` and its shard's previous block, re-signing each."""
    from sagachain.core.encoding import hash_value
    from sagachain.core.wire import to_wire

    genesis_hash = hash_value(["genesis", to_wire(genesis)])
    last: dict[str, bytes] = {}
    out = []
    for block in blocks:
        header = replace(block.header, chain=genesis_hash, parent=last.get(block.shard, genesis_hash))
        signed = sign(world, Block(header=header, entries=block.entries, qc=()))
        last[block.shard] = signed.hash
        out.append(signed)
    return out


def first(blocks: list[Block], shard_prefix: str, entry_type: type) -> int:
    """Index of the first block of a shard (by id prefix) holding an entry of ``entry_type``."""
    for index, block in enumerate(blocks):
        if block.shard.startswith(shard_prefix) and any(isinstance(e, entry_type) for e in block.entries):
            return index
    raise LookupError(f"no block of {shard_prefix}* holds a {entry_type.__name__}")


def with_entries(block: Block, entries: list[object]) -> Block:
    return Block(header=block.header, entries=tuple(entries), qc=block.qc)  # type: ignore[arg-type]
