"""Checks of the genesis record: accounts (OBJ-2..OBJ-4, MINT-1), shards and
enclaves (SH-1, SH-3, SH-4, L2L-2), the Foundation account (GAS-4)."""

from __future__ import annotations

from collections.abc import Iterator

from sagachain.core.ledger import ChainState
from sagachain.core.objects import ACCOUNT_CLASS_ID, node_id_for
from sagachain.core.rules.catalog import GENESIS, Violation, rule
from sagachain.core.rules.tools import Tools


def _is_account_class(state: ChainState, class_id: bytes) -> bool:
    seen: set[bytes] = set()
    cid: bytes | None = class_id
    while cid is not None and cid not in seen:
        if cid == ACCOUNT_CLASS_ID:
            return True
        seen.add(cid)
        record = state.classes.get(cid)
        cid = record.base if record else None
    return False


@rule("OBJ-3", "accounts are of ClassAccount or a subclass; enclave accounts of a class bound to their enclave", GENESIS)
def check_obj_3_genesis_accounts(state: ChainState, tools: Tools) -> Iterator[Violation]:
    for account in state.accounts.values():
        if not _is_account_class(state, account.class_id):
            yield Violation("OBJ-3", f"account {account.name}'s class is not ClassAccount or a subclass")
        bound = state.class_enclave(account.class_id)
        if bound != account.enclave:
            yield Violation("OBJ-3", f"account {account.name} of enclave {account.enclave} has a class bound to {bound}")
        obj = state.objects.get(account.id)
        if account.enclave is None and (obj is None or obj.class_id != account.class_id or obj.owner != account.id):
            yield Violation("OBJ-3", f"public account {account.name} needs an account object of its class owning itself")
        if account.shard not in state.shards:
            yield Violation("OBJ-2", f"account {account.name} starts on unknown shard {account.shard!r}")
        elif account.enclave is not None and state.shard_enclave(account.shard) != account.enclave:
            yield Violation("L2L-2", f"enclave account {account.name} starts on {account.shard}, not a shard of {account.enclave}")


@rule("MINT-1", "no genesis object belongs to an enclave account (their state is off chain and holds no coin)", GENESIS)
def check_mint_1_genesis(state: ChainState, tools: Tools) -> Iterator[Violation]:
    for oid, obj in state.objects.items():
        owner = state.accounts.get(obj.owner)
        if owner is None:
            yield Violation("OBJ-2", f"genesis object {oid.hex()[:12]} names unknown owner {obj.owner.hex()[:12]}")
        elif owner.enclave is not None:
            yield Violation("MINT-1", f"genesis publishes object {oid.hex()[:12]} of enclave account {owner.name}")


@rule("OBJ-4", "node accounts carry a 32-byte Ed25519 key and the id derived from it", GENESIS)
def check_obj_4_nodes(state: ChainState, tools: Tools) -> Iterator[Violation]:
    for node in state.nodes.values():
        if len(node.public_key) != 32 or node.id != node_id_for(node.public_key):
            yield Violation("OBJ-4", f"node {node.name}: key must be 32 bytes and id derived from it")


@rule("SH-3", "enclave shards are created explicitly: each belongs to exactly one enclave that lists it", GENESIS)
def check_sh_3_shards(state: ChainState, tools: Tools) -> Iterator[Violation]:
    listed = {s: e.id for e in state.enclaves.values() for s in e.shards}
    for shard in state.shards.values():
        if not shard.committee:
            yield Violation("SH-1", f"shard {shard.id} has an empty committee")
        for node_id in shard.committee:
            if node_id not in state.nodes:
                yield Violation("SH-3", f"shard {shard.id}'s committee names unknown node {node_id.hex()[:12]}")
        if shard.enclave is not None and listed.get(shard.id) != shard.enclave:
            yield Violation("SH-3", f"enclave shard {shard.id} is not listed by enclave {shard.enclave}")
    for enclave in state.enclaves.values():
        for shard_id in enclave.shards:
            if state.shard_enclave(shard_id) != enclave.id:
                yield Violation("SH-4", f"enclave {enclave.id} lists {shard_id}, which is not one of its shards")
        if not enclave.shards:
            yield Violation("SH-4", f"enclave {enclave.id} has no shard")


@rule("GAS-4", "the Foundation account exists and is a non-enclave account", GENESIS)
def check_gas_4_foundation(state: ChainState, tools: Tools) -> Iterator[Violation]:
    foundation = state.accounts.get(state.params.foundation)
    if foundation is None or foundation.enclave is not None:
        yield Violation("GAS-4", "the Foundation account named in the parameters must be a public account")
