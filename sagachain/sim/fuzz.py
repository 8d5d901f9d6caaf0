"""Deterministic simulation testing of the real protocol: seeded random runs with faults, checked per block.

``sagachain fuzz --seeds N`` runs N seeds. Each seed draws a small chain (one
to three public shards of 4 or 7 members, maybe an enclave of one or two
shards), a workload of open and enclave transactions, a network (latency,
jitter, message loss) and, for every shard, at most ``f`` faulty members of
one kind: crashes with restarts, a committee split in two, a silent member,
an equivocating proposer, or on an enclave shard a lying one. It runs in the
``members`` committee model, so every member runs
``shards.committee.CommitteeMachine``, and every fault ends by a time after
which the run goes on long enough to finish its work.

After every final block the ledger is checked: supply (MINT-5) and single
ownership (L2L-3), and its state digest is recorded. At the end: no two
members decided different blocks at one height (safety); every shard with
work still decides blocks once the faults healed (liveness: under contention
for accounts a transaction may still be waiting, so the count of committed
ones is reported, not required); no enclave
plaintext occurs in the chain file (TX-3); and the auditor, reading the
chain file, judges it well-formed and reaches the members' ledger state after
every block (the auditor agrees with every honest member). Like TigerBeetle's
VOPR, a failure names its seed, and ``sagachain fuzz --seeds 1 --start SEED``
replays it byte for byte.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sagachain.audit.auditor import audit_chain
from sagachain.core.block import Block
from sagachain.core.chainfile import read_chain, write_chain
from sagachain.core.state_digest import state_digest
from sagachain.sim.checks import plaintext_in, single_ownership_holds, supply_holds
from sagachain.sim.network import Uniform
from sagachain.sim.runner import Simulation
from sagachain.sim.scenario import MEMBERS, Scenario
from sagachain.world import recipes
from sagachain.world.build import build_world
from shards.tools import tools_for

SETTLE_MS = 30_000  # virtual time after the last fault heals, for the work left to finish
PROGRESS_MS = 10_000  # a shard with work must decide a block at least this often once the faults healed
FAULTS = ("none", "crash", "split", "silent", "equivocate", "lie")


@dataclass
class SeedResult:
    """What one seed did and every check it failed (empty: it passed)."""

    seed: int
    failures: list[str]
    blocks: int = 0
    txs: int = 0
    faults: list[str] = field(default_factory=list)
    rounds: dict[str, int] = field(default_factory=dict)
    evidence: int = 0
    messages: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def fuzz_scenario(seed: int) -> tuple[Scenario, list[str]]:
    """The random chain, workload, network and faults of ``seed``, and a line per fault."""
    rng = random.Random(f"fuzz/{seed}")
    s = Scenario(seed, name=f"fuzz-{seed}")
    s.committees(MEMBERS)
    load_ms = rng.randrange(3_000, 10_000)
    interval = rng.choice((200, 300, 500))
    low = rng.randrange(5, 60)
    s.network(latency=Uniform(low, low + rng.randrange(0, 60)), loss=rng.choice((0.0, 0.0, 0.01, 0.05, 0.1)), retry_ms=200)
    nodes = rng.choice((4, 4, 7))
    public = s.public_shards(rng.randint(1, 3), nodes=nodes)
    enclave = s.enclave("acme", shards=rng.randint(1, 2), nodes=nodes) if rng.random() < 0.6 else []
    people = recipes.people(s, rng.randint(4, 10))
    vaults = recipes.enclave_vaults(s, "acme", enclave) if enclave else []
    recipes.traffic(s, people, vaults, rng.randint(5, 40), rng.randint(1, 12) if vaults else 0, load_ms)
    faulty = (nodes - 1) // 3
    heal = load_ms
    lines = []
    for sid in [*public, *enclave]:
        kind = rng.choice(FAULTS if sid in enclave else FAULTS[:-1])
        at = rng.randrange(0, load_ms)
        until = rng.randrange(at + 1, at + 6_000)
        heal = max(heal, until)
        if kind == "crash":
            count = rng.randint(1, faulty + 1)  # one more than f stops the shard until the restart
            s.crash(at, sid, nodes=count, restart=until)
            lines.append(f"{sid}: {count} of {nodes} members crash at {at} ms, restart at {until} ms")
        elif kind == "split":
            cut = rng.randint(1, nodes - 1)
            s.partition_members(at, sid, list(range(cut)), list(range(cut, nodes)))
            s.heal(until)
            lines.append(f"{sid}: members 0..{cut - 1} and {cut}..{nodes - 1} split from {at} to {until} ms")
        elif kind in ("silent", "equivocate", "lie"):
            height, count = rng.randint(1, 6), rng.randint(1, 6)
            s.misbehave(sid, "forge_state" if kind == "lie" else kind, at_height=height, count=count)
            lines.append(f"{sid}: one {kind} member from height {height}, {count} heights")
    s.configure(duration=heal + SETTLE_MS, block_interval=interval)
    return s, lines


def run_seed(seed: int, keep: Path | None = None) -> SeedResult:
    """Run ``seed`` and check it; ``keep``: also write its chain file there."""
    scenario, lines = fuzz_scenario(seed)
    world = build_world(scenario)
    initial = [store.copy() for store in world.stores.values()]
    tools = tools_for(scenario.crypto)
    sim = Simulation(world, tools)
    failures: list[str] = []
    digests: list[bytes] = []

    def after_block(block: Block) -> None:
        digests.append(state_digest(sim.chain))
        if not supply_holds(sim.chain):
            failures.append(f"MINT-5: supply does not add up after {block.shard}#{block.height}")
        if not single_ownership_holds(sim.chain):
            failures.append(f"L2L-3: an account has two holders after {block.shard}#{block.height}")

    sim.watch = after_block
    result = sim.run()
    consensus = result.metrics.consensus
    failures.extend(f"safety: {fork}" for fork in consensus.get("forks", []))  # type: ignore[union-attr]
    committed = sum(result.metrics.committed.values())
    assert sim.committees is not None
    for sid in sim.committees.stalled(since=result.end_time - PROGRESS_MS):
        failures.append(f"liveness: {sid} has work but decided no block in the last {PROGRESS_MS} ms, {SETTLE_MS} ms after the faults healed")
    with tempfile.TemporaryDirectory() as tmp:
        path = (keep or Path(tmp)) / "chain.sgc"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_chain(path, world.genesis, result.blocks)
        leaked = plaintext_in(path.read_bytes(), [*initial, *world.stores.values()])
        if leaked:
            failures.append(f"TX-3: enclave plaintext in the chain file: {leaked[:3]}")
        audited: list[bytes] = []
        report = audit_chain(read_chain(path), tools, on_judged=lambda judged, state: audited.append(state_digest(state)))
    if not report.ok:
        failures.append("audit: " + "; ".join(f"{v.rule} at {v.shard}#{v.height}: {v.reason}" for v in report.violations[:3]))
    if audited != digests:
        where = next((i for i, (a, b) in enumerate(zip(audited, digests)) if a != b), min(len(audited), len(digests)))
        failures.append(f"the auditor's ledger differs from the members' after block {where} of the chain file")
    rounds = consensus.get("decided_by_round", {})
    return SeedResult(
        seed, failures, blocks=len(result.blocks), txs=committed, faults=lines,
        rounds=dict(rounds) if isinstance(rounds, dict) else {},
        evidence=int(consensus.get("evidence", 0)), messages=int(consensus.get("messages", 0)),  # type: ignore[call-overload]
    )


def summary(results: list[SeedResult]) -> dict[str, object]:
    """The sweep in numbers, for the command's table and its ``--report``."""
    rounds: Counter[str] = Counter()
    for r in results:
        rounds.update(r.rounds)
    return {
        "seeds": len(results),
        "failed": [{"seed": r.seed, "failures": r.failures, "faults": r.faults} for r in results if not r.ok],
        "blocks": sum(r.blocks for r in results),
        "transactions": sum(r.txs for r in results),
        "consensus_messages": sum(r.messages for r in results),
        "decided_by_round": dict(sorted(rounds.items(), key=lambda kv: int(kv[0]))),
        "members_caught_equivocating": sum(r.evidence for r in results),
    }
