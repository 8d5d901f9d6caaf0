"""Enclave membership: who signs enclave blocks (MEM-1), how the roster may change
(MEM-2) and when a change must start a new epoch (MEM-3).

A roster change is an ordinary transaction calling a native method of the
enclave's roster account. The method builds the entry's new value and asks
``mem_2_problem`` whether the transition is allowed; the auditor and every
validator ask the same function about the change a block publishes, by
reading the transition back from the entry's value before and after. One
table, two users: a forged block that removes the owner fails here with the
same reason an honest node gave when it refused the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sagachain.core.block import Block, MixedEntry, ObjectUpdate, OpenEntry
from sagachain.core.ledger import ChainState
from sagachain.core.objects import node_id_for
from sagachain.core.roster import (
    ADMIN,
    BLOCKED,
    MEMBER,
    OWNER,
    PENDING,
    RosterEntry,
    RosterHead,
    entry_id,
    entry_of,
    epoch_id,
    epoch_of,
    head_of,
    key_proof_message,
    roster_id,
)
from sagachain.core.rules.catalog import BLOCK, ENTRY, GENESIS, Violation, rule
from sagachain.core.rules.tools import Tools

APPLY, INVITE, ACCEPT, DECLINE, APPROVE, JOIN = "apply", "invite", "accept", "decline", "approve", "join"
REMOVE, BLOCK_NODE, UNBLOCK, GRANT, REVOKE, ROTATE = "remove", "block", "unblock", "grant", "revoke", "rotate"
SELF_OPS = (APPLY, ACCEPT, DECLINE, JOIN, ROTATE)  # done by the node's own account
ADMIN_OPS = (INVITE, APPROVE, BLOCK_NODE, UNBLOCK, GRANT, REVOKE)  # done by an admin's account
# REMOVE is either: an admin removes a node, or a node leaves.


@dataclass(frozen=True, slots=True)
class Transition:
    """One roster change: the entry of ``node`` going from ``before`` to ``after`` (None: no entry)."""

    op: str
    node: bytes
    before: RosterEntry | None
    after: RosterEntry | None


def read_transition(before: RosterEntry | None, after: RosterEntry | None) -> Transition | str:
    """Which operation turns ``before`` into ``after``; a reason when none does."""
    node = (after or before).node if (after or before) else b""
    b_state = before.state if before else None
    a_state = after.state if after else None
    op: str | None = None
    if b_state is None and a_state == PENDING:
        op = INVITE if after and after.invite else APPLY
    elif b_state is None and a_state == MEMBER:
        op = JOIN
    elif a_state == BLOCKED and b_state != BLOCKED:
        op = BLOCK_NODE
    elif b_state == PENDING and a_state == MEMBER:
        op = ACCEPT if before and before.invite else APPROVE
    elif b_state == PENDING and a_state is None:
        op = DECLINE if before and before.invite else REMOVE
    elif b_state == MEMBER and a_state is None:
        op = REMOVE
    elif b_state == BLOCKED and a_state is None:
        op = UNBLOCK
    elif b_state == MEMBER and a_state == MEMBER and before and after:
        added, dropped = set(after.traits) - set(before.traits), set(before.traits) - set(after.traits)
        if after.key != before.key and not added and not dropped:
            op = ROTATE
        elif added and not dropped and after.key == before.key:
            op = GRANT
        elif dropped and not added and after.key == before.key:
            op = REVOKE
    if op is None:
        return f"no roster operation turns {b_state or 'no entry'} into {a_state or 'no entry'} this way"
    return Transition(op, node, before, after)


def _key_problem(enclave: str, entry: RosterEntry, verify: Callable[[bytes, bytes, bytes], bool]) -> str | None:
    first = entry.previous_keys[0] if entry.previous_keys else entry.key
    if entry.node != node_id_for(first):
        return f"node id {entry.node.hex()[:12]} is not the id of its first key {first.hex()[:12]}"
    if not verify(entry.key, key_proof_message(enclave, entry.node, entry.key, entry.account), entry.proof):
        return f"the key proof of node {entry.node.hex()[:12]} does not verify: sign the key package with the node key"
    return None


def mem_2_problem(
    t: Transition,
    *,
    head: RosterHead,
    sender: bytes,
    actor: RosterEntry | None,
    verify: Callable[[bytes, bytes, bytes], bool],
) -> str | None:
    """Why transition ``t`` may not happen, sent by account ``sender`` acting as ``actor``
    (the roster entry of the node it acts for, as the roster stood before); None when allowed.

    ``head`` is the roster head before the change (its policy and shards).
    """
    before, after = t.before, t.after
    who = t.node.hex()[:12]
    if after is not None:
        if before is not None and (after.node != before.node or after.account != before.account):
            return f"the entry of {who} may not change its node or its account"
        if not set(after.shards) <= set(head.shards):
            return f"seats {sorted(set(after.shards) - set(head.shards))} are not shards of enclave {head.enclave}"
    if t.op in SELF_OPS or (t.op == REMOVE and actor is not None and actor.node == t.node):
        own = (before or after)
        assert own is not None
        if own.account != sender:
            return f"{t.op} is done by the node's own account {own.account.hex()[:12]}, not {sender.hex()[:12]}"
    else:
        if actor is None or actor.state != MEMBER or not actor.has(ADMIN):
            return f"{t.op} of {who} needs an admin: the acting node is not a MEMBER with the admin trait"
        if actor.account != sender:
            return f"{t.op}: the acting admin's account is {actor.account.hex()[:12]}, the sender is {sender.hex()[:12]}"
    if before is not None and before.has(OWNER) and t.op in (REMOVE, BLOCK_NODE):
        return f"the owner {who} cannot be removed or blocked"
    if t.op in (APPLY, INVITE, JOIN):
        assert after is not None
        if after.traits or after.previous_keys:
            return f"{t.op}: a new entry starts with no traits and no previous keys"
        if t.op == JOIN and not head.policy.auto_join:
            return f"enclave {head.enclave} does not admit nodes by auto-join; apply and wait for an admin"
        return _key_problem(head.enclave, after, verify)
    assert before is not None
    if t.op in (ACCEPT, APPROVE):
        assert after is not None
        if (after.key, after.traits, after.proof, after.invite) != (before.key, before.traits, before.proof, b""):
            return f"{t.op}: only the state changes (and the escrowed invite is used up)"
        if tuple(after.shards) != tuple(before.shards):
            return f"{t.op}: the seats are the ones asked for"
    elif t.op == ROTATE:
        assert after is not None
        if after.previous_keys != (*before.previous_keys, before.key):
            return "rotate: the replaced key must be recorded in previous_keys (MEM-5 peers accept the new key by it)"
        if (after.traits, after.shards, after.invite) != (before.traits, before.shards, before.invite):
            return "rotate: only the key changes"
        return _key_problem(head.enclave, after, verify)
    elif t.op in (GRANT, REVOKE):
        assert after is not None
        changed = set(after.traits) ^ set(before.traits)
        if OWNER in changed:
            return "the owner trait is given at creation and never granted or revoked"
        if t.op == REVOKE and ADMIN in changed and before.has(OWNER):
            return f"the owner {who} cannot be demoted"
        if (after.key, after.shards, after.invite) != (before.key, before.shards, before.invite):
            return f"{t.op}: only the traits change"
    elif t.op == BLOCK_NODE:
        assert after is not None
        if after.traits or after.invite:
            return "block: a blocked entry keeps no traits and no invite"
    return None


def membership_change(t: Transition) -> tuple[str, bytes, bytes] | None:
    """MEM-3: what this transition does to the set of members and their keys: (op, node, new key)
    for an add, a removal or a rotation, which each start an epoch; None otherwise."""
    if t.op in (ACCEPT, APPROVE, JOIN):
        assert t.after is not None
        return ("add", t.node, t.after.key)
    if t.op in (REMOVE, BLOCK_NODE) and t.before is not None and t.before.state == MEMBER:
        return ("remove", t.node, b"")
    if t.op == ROTATE:
        assert t.after is not None
        return ("rotate", t.node, t.after.key)
    return None


# -- what a block publishes ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RosterWrite:
    """The roster objects one transaction wrote for one enclave."""

    enclave: str
    head_before: RosterHead | None
    head_after: RosterHead | None
    entries: list[tuple[bytes, RosterEntry | None, RosterEntry | None, bool]]  # id, before, after, readable
    epochs: list[tuple[bytes, Any]]  # id, record after


def roster_writes(state: ChainState, updates: tuple[ObjectUpdate, ...]) -> list[RosterWrite]:
    """Group a transaction's updates by the roster they touch, with each object's value before."""
    found: dict[str, RosterWrite] = {}
    for enclave in state.rosters_touched(updates):
        rid = roster_id(enclave)
        found[enclave] = RosterWrite(enclave, head_of(state.objects.get(rid)), None, [], [])
    for update in updates:
        old = state.objects.get(update.id)
        value = update.value if update.value is not None else old
        if value is None or value.owner not in state.roster_enclaves:
            continue
        write = found[state.roster_enclaves[value.owner]]
        if update.id == value.owner:
            found[write.enclave] = RosterWrite(write.enclave, write.head_before, head_of(update.value), write.entries, write.epochs)
        elif entry_of(value) is not None or (old is not None and entry_of(old) is not None):
            readable = update.value is None or entry_of(update.value) is not None
            write.entries.append((update.id, entry_of(old), entry_of(update.value), readable))
        else:
            write.epochs.append((update.id, epoch_of(update.value)))
    return list(found.values())


def roster_write_problems(state: ChainState, write: RosterWrite, sender: bytes, verify: Callable[[bytes, bytes, bytes], bool]) -> Iterator[tuple[str, str]]:
    """(rule, reason) for everything wrong with one transaction's change to one roster."""
    before, after = write.head_before, write.head_after
    if before is None or after is None:
        yield "MEM-2", "a roster change must update the roster head, and the head must stay readable"
        return
    if (after.enclave, after.kind, after.strategy, after.policy, after.shards) != (before.enclave, before.kind, before.strategy, before.policy, before.shards):
        yield "MEM-2", "the roster head's enclave, kind, strategy, policy and shards are fixed at creation"
    if after.version != before.version + 1 or len(write.entries) != 1:
        yield "MEM-2", f"one roster change per transaction: version {before.version} -> {after.version}, {len(write.entries)} entries written"
        return
    oid, old, new, readable = write.entries[0]
    if not readable:
        yield "MEM-2", "a roster entry was overwritten with an object that is not a roster entry"
        return
    t = read_transition(old, new)
    if isinstance(t, str):
        yield "MEM-2", t
        return
    if oid != entry_id(write.enclave, t.node):
        yield "MEM-2", f"the entry of node {t.node.hex()[:12]} is stored under another node's id"
    if new is not None and new.since != after.version:
        yield "MEM-2", f"the entry's since ({new.since}) is not the roster version of the change ({after.version})"
    actor = entry_of(state.objects.get(entry_id(write.enclave, after.actor))) if after.actor else None
    if after.actor == t.node and t.op in SELF_OPS + (REMOVE,):
        actor = old or new
    problem = mem_2_problem(t, head=before, sender=sender, actor=actor, verify=verify)
    if problem is not None:
        yield "MEM-2", problem
    change = membership_change(t)
    expected_epoch = before.epoch + (1 if change else 0)
    if after.epoch != expected_epoch:
        yield "MEM-3", f"{t.op} of {t.node.hex()[:12]} leaves the roster at epoch {after.epoch}; it must be {expected_epoch}"
    records = [r for _, r in write.epochs]
    if change is None:
        if write.epochs:
            yield "MEM-3", f"{t.op} changes no member, yet it writes epoch key material"
        return
    if len(write.epochs) != 1 or write.epochs[0][0] != epoch_id(write.enclave, after.epoch) or records[0] is None:
        yield "MEM-3", f"{t.op} starts epoch {after.epoch}: it must publish that epoch's key material, and only that"
        return
    yield from (("MEM-3", reason) for reason in state.rekey_problems(write.enclave, records[0], change))


def _roster_violations(state: ChainState, block: Block, index: int, entry: Any, tools: Tools, rule_id: str) -> Iterator[Violation]:
    """The violations of ``rule_id`` among everything wrong with the entry's roster changes."""
    if not state.roster_enclaves or not entry.updates:
        return
    for write in roster_writes(state, entry.updates):
        for found, reason in roster_write_problems(state, write, entry.tx.sender, tools.verify):
            if found == rule_id:
                yield Violation(rule_id, f"enclave {write.enclave}: {reason}", block.shard, block.height, index, entry.tx.id)


@rule("MEM-2", "roster changes follow the join, removal and trait rules; the owner is never removed or demoted", ENTRY, (OpenEntry, MixedEntry))
def check_mem_2_roster(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    yield from _roster_violations(state, block, index, entry, tools, "MEM-2")


@rule("MEM-3", "a roster change that adds, removes or re-keys a member starts the next epoch with its key material", ENTRY, (OpenEntry, MixedEntry))
def check_mem_3_epochs(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    yield from _roster_violations(state, block, index, entry, tools, "MEM-3")


@rule("MEM-1", "an enclave block is produced and signed only by MEMBERs seated on its shard at that height", BLOCK)
def check_mem_1_signers(state: ChainState, block: Block, tools: Tools) -> Iterator[Violation]:
    record = state.shards.get(block.shard)
    if record is None or record.enclave is None or record.enclave not in state.seats:
        return
    committee, _ = state.committee_at(block.shard, block.height)
    seated = set(committee)
    entries = {e.node: e for e in state.roster_entries(record.enclave)}
    for who, what in [(block.header.producer, "producer"), *((v.signer, "signer") for v in block.qc)]:
        if who in seated:
            continue
        entry = entries.get(who)
        now = f"it is {entry.state} now" if entry else "it has no roster entry"
        yield Violation(
            "MEM-1",
            f"{what} {who.hex()[:12]} was not a MEMBER seated on {block.shard} of enclave {record.enclave} at this height ({now})",
            block.shard,
            block.height,
        )


@rule("MEM-1", "each enclave's genesis roster seats exactly its shards' genesis committees, with one owner", GENESIS)
def check_mem_1_genesis_roster(state: ChainState, tools: Tools) -> Iterator[Violation]:
    for enclave, history in state.seats.items():
        seats = history[0]
        for shard in state.enclaves[enclave].shards:
            if seats.committees.get(shard, ()) != state.shards[shard].committee:
                yield Violation("MEM-1", f"enclave {enclave}: the genesis committee of {shard} is not the roster's MEMBERs seated on it (by node id)")
        entries = state.roster_entries(enclave)
        owners = [e for e in entries if e.has(OWNER)]
        if len(owners) != 1 or owners[0].state != MEMBER or not owners[0].has(ADMIN):
            yield Violation("MEM-1", f"enclave {enclave}: the genesis roster needs exactly one owner, a MEMBER with the admin trait")
        for entry in entries:
            problem = _key_problem(enclave, entry, tools.verify)
            if problem is not None:
                yield Violation("MEM-1", f"enclave {enclave}: {problem}")


@rule("MEM-3", "each enclave's genesis epoch key material is a valid start sealed to exactly its MEMBERs", GENESIS)
def check_mem_3_genesis_epoch(state: ChainState, tools: Tools) -> Iterator[Violation]:
    for enclave in state.seats:
        schedule = state.schedules.get(enclave)
        members = {e.node: e.key for e in state.roster_entries(enclave) if e.state == MEMBER}
        if schedule is None or schedule.epoch != 1 or schedule.members != members:
            yield Violation("MEM-3", f"enclave {enclave}: the genesis epoch 1 key material must start the key schedule for exactly the roster's MEMBERs")
