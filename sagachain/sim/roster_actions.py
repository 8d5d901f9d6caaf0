"""Roster actions a scenario declares (MEM-2, MEM-3): what ``s.roster`` and ``s.churn`` record.

A declaration records intent only, checked against what is known before the
run: the enclave, the operation, the node names, the seats. Whether the action
is allowed is the chain's verdict at run time (``sagachain.sim.membership``
submits it as an ordinary transaction; MEM-2 may refuse it, for instance the
removal of the owner), so the scenario can also declare what must fail.

Node names: an enclave's founding nodes are named by the world
(``sagachain.world.build``), committee nodes ``<shard>-n<i>`` (``acme/0-n2``)
and seatless members ``<enclave>-m<i>``; a node that joins gets
``<enclave>-j<k>`` (k counting the enclave's joins and invites in declaration
order) unless the scenario names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sagachain.errors import InputError
from sagachain.world.declarations import MODELLED, member_names

if TYPE_CHECKING:
    from sagachain.sim.scenario import Scenario

JOIN, INVITE, REMOVE, BLOCK, ROTATE, GRANT_ADMIN, REVOKE_ADMIN = "join", "invite", "remove", "block", "rotate", "grant-admin", "revoke-admin"
OPS = (JOIN, INVITE, REMOVE, BLOCK, ROTATE, GRANT_ADMIN, REVOKE_ADMIN)
NEW_NODE_OPS = (JOIN, INVITE)  # the node is new: it gets a fresh key
ACTION = "roster"  # the kind of ``Scheduled`` item the simulator hands to the membership driver


@dataclass(frozen=True)
class RosterAction:
    """One roster change at ``at`` ms: ``op`` on ``node`` (None: a random current non-owner
    member, drawn at run time) of ``enclave``; ``seats`` are the shards a joining node sits on."""

    at: int
    enclave: str
    op: str
    node: str | None
    seats: tuple[str, ...] = ()


def committee_names(s: Scenario, enclave: str) -> list[str]:
    ids, nodes = s.enclaves[enclave]
    return [f"{shard}-n{i}" for shard in ids for i in range(nodes)]


def declared(s: Scenario, enclave: str) -> list[RosterAction]:
    return [item.args["action"] for item in s.scheduled if item.action == ACTION and item.args["action"].enclave == enclave]


def roster_action(s: Scenario, at: int, enclave: str, op: str, node: str | None, seats: list[str] | tuple[str, ...] | None) -> RosterAction:
    """The checked declaration of one roster action; InputError naming the argument and the rule."""
    if enclave not in s.enclaves:
        raise InputError(f"roster: unknown enclave {enclave!r}; declare it with s.enclave({enclave!r}, ...) first", rule="MEM-2")
    if s.crypto == MODELLED:
        raise InputError("roster: membership changes seal epoch keys to real X25519 keys, which modelled crypto has not; "
                         "drop s.crypto_mode('modelled') or the roster actions", rule="MEM-3")
    if op not in OPS:
        raise InputError(f"roster: op {op!r} is not one of {', '.join(OPS)}", rule="MEM-2")
    if not isinstance(at, int) or isinstance(at, bool) or at < 0:
        raise InputError(f"roster: at={at!r} must be a non-negative int (virtual ms)", rule="MEM-2")
    if s.enclave_setup[enclave].operator_balance <= 0:
        raise InputError(f"roster: enclave {enclave!r} has no operator_balance; its operator signs and pays for roster "
                         f"transactions: declare s.enclave({enclave!r}, ..., operator_balance=10**9)", rule="MEM-2")
    ids = s.enclaves[enclave][0]
    chosen = tuple(sorted(seats or ()))
    if op not in NEW_NODE_OPS and chosen:
        raise InputError(f"roster: seats are asked for when a node joins; {op} takes none", rule="MEM-2")
    if not set(chosen) <= set(ids) or len(set(chosen)) != len(chosen):
        raise InputError(f"roster: seats {list(chosen)} must be distinct shards of enclave {enclave!r}: {ids}", rule="MEM-2")
    earlier = declared(s, enclave)
    joined = [a.node for a in earlier if a.op in NEW_NODE_OPS]
    known = committee_names(s, enclave) + member_names(s, enclave) + [n for n in joined if n is not None]
    if op in NEW_NODE_OPS:
        if node is None:
            node = f"{enclave}-j{len(joined)}"
        if node in known:
            raise InputError(f"roster: {op} of {node!r}: that node is already on the roster or declared to join; "
                             "name a new node, or leave node=None for a fresh name", rule="MEM-2")
    elif node is not None and node not in known:
        raise InputError(f"roster: {op} of {node!r}: no such node of enclave {enclave!r}; its nodes are named "
                         f"{known[0]}, ... (founding), or as they were declared to join", rule="MEM-2")
    return RosterAction(at=at, enclave=enclave, op=op, node=node, seats=chosen)


def churn_plan(s: Scenario, enclave: str, start: int, end: int, joins: int, removals: int, rotations: int) -> list[tuple[int, str]]:
    """(time, op) of ``joins`` joins, ``removals`` removals and ``rotations`` key rotations at
    times drawn from ``s.rng`` in [start, end), in time order."""
    for name, count in (("joins", joins), ("removals", removals), ("rotations", rotations)):
        if not isinstance(count, int) or count < 0:
            raise InputError(f"churn: {name}={count!r} must be a non-negative int", rule="MEM-2")
    if not 0 <= start < end:
        raise InputError(f"churn: needs 0 <= start < end, got start={start}, end={end}", rule="MEM-2")
    ops = [JOIN] * joins + [REMOVE] * removals + [ROTATE] * rotations
    s.rng.shuffle(ops)
    return sorted((s.rng.randrange(start, end), op) for op in ops)
