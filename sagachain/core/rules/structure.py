"""Block structure: chaining (TX-5) and quorum certificates (SH-1)."""

from __future__ import annotations

from collections.abc import Iterator

from sagachain.core.block import Block, body_hash
from sagachain.core.encoding import HASH_SIZE
from sagachain.core.ledger import ChainState
from sagachain.core.objects import committee_hash
from sagachain.core.rules.catalog import BLOCK, Violation, rule
from sagachain.core.rules.tools import Tools


def _v(rule_id: str, block: Block, reason: str) -> Violation:
    return Violation(rule_id, reason, block.shard, block.height)


@rule("TX-5", "blocks chain by hash: chain id, shard, height, parent hash, body hash, time", BLOCK)
def check_tx_5_chaining(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    h = block.header
    if h.chain != state.genesis_hash:
        yield _v("TX-5", block, f"block names chain {h.chain.hex()[:12]}, expected genesis {state.genesis_hash.hex()[:12]}")
    if h.shard not in state.shards:
        yield _v("TX-5", block, f"block names unknown shard {h.shard!r}")
        return
    expected = state.heads[h.shard] + 1
    if h.height != expected:
        yield _v("TX-5", block, f"height {h.height} but shard {h.shard} is at {expected - 1}, expected {expected}")
        return
    parent = state.blocks.get((h.shard, h.height - 1))
    parent_hash = parent.hash if parent else state.genesis_hash
    if h.parent != parent_hash:
        yield _v("TX-5", block, f"parent {h.parent.hex()[:12]} is not the hash of height {h.height - 1} ({parent_hash.hex()[:12]})")
    if parent is not None and h.time < parent.time:
        yield _v("TX-5", block, f"time {h.time} is before the parent's time {parent.time}")
    if h.body != body_hash(block.entries):
        yield _v("TX-5", block, "body hash does not match the block's entries")


@rule("SH-1", "quorum certificate: >2/3 of the shard committee signed the block hash, producer included", BLOCK)
def check_sh_1_quorum(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    shard = state.shards.get(block.shard)
    if shard is None:
        return
    h = block.header
    committee_list, keys = state.committee_at(block.shard, block.height)
    # On an enclave shard with a roster, who may sign is MEM-1's verdict; SH-1 counts the quorum.
    by_roster = shard.enclave is not None and shard.enclave in state.seats
    if h.committee != committee_hash(block.shard, committee_list):
        yield _v("SH-1", block, "header names a committee other than the shard's")
    committee = set(committee_list)
    if h.producer not in committee and not by_roster:
        yield _v("SH-1", block, f"producer {h.producer.hex()[:12]} is not in the committee of {block.shard}")
    signers: set[bytes] = set()
    digest = block.hash
    for vote in block.qc:
        key = keys.get(vote.signer)
        if vote.signer not in committee or key is None:
            if not by_roster:
                yield _v("SH-1", block, f"signer {vote.signer.hex()[:12]} is not a committee member")
        elif vote.signer in signers:
            yield _v("SH-1", block, f"signer {vote.signer.hex()[:12]} signed twice")
        elif not tools.verify(key, digest, vote.signature):
            yield _v("SH-1", block, f"signature of {_name(state, vote.signer)} does not verify over the block hash")
        else:
            signers.add(vote.signer)
    if 3 * len(signers) <= 2 * len(committee):
        yield _v("SH-1", block, f"{len(signers)} valid signatures of a committee of {len(committee)}; more than 2/3 needed")
    if h.producer in committee and h.producer not in signers:
        yield _v("SH-1", block, "the producer did not sign its own block")


def _name(state: ChainState, node: bytes) -> str:
    record = state.nodes.get(node)
    return record.name if record else f"node {node.hex()[:12]}"


@rule("OBJ-1", "every object and account id a block names is 32 bytes", BLOCK)
def check_obj_1_ids(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    for index, entry in enumerate(block.entries):
        ids = [u.id for u in getattr(entry, "updates", ())]
        for name in ("account", "deployer"):
            if hasattr(entry, name):
                ids.append(getattr(entry, name))
        ids.extend(getattr(entry, "accounts", ()))
        tx = getattr(entry, "tx", None)
        if tx is not None:
            ids.extend((tx.sender, tx.gas_payer, *tx.account_ids()))
        for oid in ids:
            if len(oid) != HASH_SIZE:
                yield Violation("OBJ-1", f"entry names an id of {len(oid)} bytes; ids are {HASH_SIZE}-byte BLAKE3 hashes", block.shard, block.height, index)
