"""An enclave's roster as public objects (MEM-1, MEM-2, MEM-3).

The roster is an account of class ``ClassRoster``, one per enclave. It owns
one object per node that ever applied, was invited or was blocked (its
``RosterEntry``) and one object per epoch (the ``Rekey`` that started it). One
object per entry, rather than one list in the roster account, keeps the cost of
a change on chain proportional to what changed: approving one node publishes
that node's entry, the roster head and the epoch's key material, never the
whole roster.

Every change goes through an ordinary transaction calling one of the roster's
native methods (``runtimes.system_classes``); the transition rules that gate
them live in ``sagachain.core.rules.membership`` and are the same functions
the auditor applies to the published changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sagachain.core.encoding import decode, derive_id, hash_value
from sagachain.core.epoch_keys import SEAL_TO_ALL, MemberBox, NodeBox, Rekey
from sagachain.core.objects import StoredObject, class_id_for, node_id_for
from sagachain.core.wire import WireError, from_wire, to_wire

ROSTER_CLASS_NAME = "ClassRoster"
ROSTER_ENTRY_CLASS_NAME = "RosterEntry"
ROSTER_EPOCH_CLASS_NAME = "RosterEpoch"
ROSTER_CLASS_ID = class_id_for(ROSTER_CLASS_NAME)
ROSTER_ENTRY_CLASS_ID = class_id_for(ROSTER_ENTRY_CLASS_NAME)
ROSTER_EPOCH_CLASS_ID = class_id_for(ROSTER_EPOCH_CLASS_NAME)

# Entry states (MEM-1). An entry that is gone (declined invite, removed, unblocked) has no object.
PENDING = "PENDING"
MEMBER = "MEMBER"
BLOCKED = "BLOCKED"
STATES = (PENDING, MEMBER, BLOCKED)

# Traits (MEM-1): owner and admin are the ones the rules read; a template may add others.
OWNER = "owner"
ADMIN = "admin"

# Enclave kinds (REG-1): templates for the policy and a mailbox's retention, and a hint
# shown to people; no authorization decision reads the kind, only the policy it filled in.
SHARED = "shared"
PERSONAL = "personal"
DM = "dm"
KINDS = (SHARED, PERSONAL, DM)

# Mailbox retention (MBX-2), which a kind's template picks for the enclave's mailbox.
BURN_ON_READ = "burn-on-read"
TTL = "ttl"
PERMANENT = "permanent"
RETENTIONS = (BURN_ON_READ, TTL, PERMANENT)


@dataclass(frozen=True, slots=True, kw_only=True)
class KindTemplate:
    """What choosing a kind fills in; each field can still be set explicitly."""

    auto_join: bool
    retention: str


KIND_TEMPLATES = {
    SHARED: KindTemplate(auto_join=False, retention=TTL),  # a room: admins admit, history expires
    PERSONAL: KindTemplate(auto_join=False, retention=PERMANENT),  # one owner's data: kept
    DM: KindTemplate(auto_join=False, retention=BURN_ON_READ),  # a mailbox: gone once every device has it
}


def roster_id(enclave: str) -> bytes:
    """The roster account of ``enclave``."""
    return derive_id("roster", enclave)


def entry_id(enclave: str, node: bytes) -> bytes:
    return derive_id("roster-entry", enclave, node)


def epoch_id(enclave: str, epoch: int) -> bytes:
    return derive_id("roster-epoch", enclave, epoch)


def key_proof_message(enclave: str, node: bytes, key: bytes, account: bytes) -> bytes:
    """What a node signs with its node key to apply, join or rotate: proof that the key
    is held by the applicant and binds it to the account that acts for it (a key package)."""
    return hash_value(["roster-key-proof", enclave, node, key, account])


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How an enclave admits nodes. ``auto_join`` lets any node join without approval (MEM-2)."""

    auto_join: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterHead:
    """The roster account's own fields: which enclave, its epoch and a change counter.

    ``version`` counts every change (any entry written); ``epoch`` counts the
    changes that added, removed or re-keyed a member (MEM-3).
    """

    enclave: str
    kind: str
    strategy: str
    policy: Policy
    shards: tuple[str, ...]  # the enclave's shards: the seats a node may ask for
    epoch: int
    version: int
    actor: bytes = b""  # the node whose account made the latest change (the admin, or the node itself)


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterEntry:
    """One node on the roster.

    ``account`` acts for the node (it signs the node's applications, its
    acceptance, its key rotations; an admin's account signs admin actions).
    ``shards`` are the enclave shards whose committee the node sits on; a
    MEMBER with none holds the keys and the state without voting.
    ``invite`` is the escrowed key material an admin prepared (MEM-2, two
    phases), empty when the entry is an application. ``previous_keys`` are the
    node keys it rotated away from, so a peer that pinned one of them can tell a
    recorded rotation from an impostor (MEM-5).
    """

    node: bytes
    key: bytes
    account: bytes
    state: str
    traits: tuple[str, ...]
    shards: tuple[str, ...]
    proof: bytes = b""  # the node key's signature over ``key_proof_message``: the key is really the node's
    invite: bytes = b""
    previous_keys: tuple[bytes, ...] = ()
    since: int = 0  # the roster version that last changed this entry

    def has(self, trait: str) -> bool:
        return trait in self.traits

    def with_traits(self, traits: set[str] | tuple[str, ...]) -> RosterEntry:
        return replace(self, traits=tuple(sorted(set(traits))))


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochRecord:
    """The key material that started ``epoch``: the encoded ``Rekey`` (``sagachain.core.epoch_keys``)."""

    epoch: int
    rekey: bytes


def head_to_object(enclave: str, head: RosterHead, balance: int = 0) -> StoredObject:
    return StoredObject(class_id=ROSTER_CLASS_ID, owner=roster_id(enclave), fields={**to_wire(head), "balance": balance})


def head_of(obj: StoredObject | None) -> RosterHead | None:
    if obj is None or obj.class_id != ROSTER_CLASS_ID:
        return None
    return _read(RosterHead, {k: v for k, v in obj.fields.items() if k != "balance"})


def entry_to_object(enclave: str, entry: RosterEntry) -> StoredObject:
    return StoredObject(class_id=ROSTER_ENTRY_CLASS_ID, owner=roster_id(enclave), fields=to_wire(entry))


def entry_of(obj: StoredObject | None) -> RosterEntry | None:
    if obj is None or obj.class_id != ROSTER_ENTRY_CLASS_ID:
        return None
    return _read(RosterEntry, obj.fields)


def epoch_to_object(enclave: str, record: EpochRecord) -> StoredObject:
    return StoredObject(class_id=ROSTER_EPOCH_CLASS_ID, owner=roster_id(enclave), fields=to_wire(record))


def epoch_of(obj: StoredObject | None) -> EpochRecord | None:
    if obj is None or obj.class_id != ROSTER_EPOCH_CLASS_ID:
        return None
    return _read(EpochRecord, obj.fields)


def _read(cls: type, fields: dict[str, Any]) -> Any:
    """A record from object fields; None when they do not fit (a forged object is judged, not crashed on)."""
    try:
        return from_wire(cls, fields, cls.__name__)
    except (WireError, TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Seats:
    """Who sits on an enclave's shard committees after one roster change, and with which keys.

    ``shard``/``height`` locate the block that made the change (``""``/0 for
    genesis); a block of an enclave shard is signed by the seats of the latest
    change its parent could see (``ChainState.committee_at``).
    """

    shard: str
    height: int
    version: int
    committees: dict[str, tuple[bytes, ...]]
    keys: dict[bytes, bytes]


def seats_of(shard: str, height: int, head: RosterHead, entries: list[RosterEntry]) -> Seats:
    """The committees the roster's MEMBERs form: each enclave shard's seated members by node id."""
    committees: dict[str, list[bytes]] = {}
    keys: dict[bytes, bytes] = {}
    for entry in entries:
        if entry.state != MEMBER:
            continue
        keys[entry.node] = entry.key
        for seat in entry.shards:
            committees.setdefault(seat, []).append(entry.node)
    return Seats(
        shard=shard,
        height=height,
        version=head.version,
        committees={s: tuple(sorted(nodes)) for s, nodes in committees.items()},
        keys=keys,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundingNode:
    """A node seated by genesis: its key, the account acting for it, the shard it sits on."""

    key: bytes
    account: bytes
    shard: str
    proof: bytes


def founding_roster(
    *,
    enclave: str,
    kind: str,
    strategy: str,
    auto_join: bool,
    shards: tuple[str, ...],
    founders: list[FoundingNode],
    rekey: bytes,
) -> list[tuple[bytes, StoredObject]]:
    """The roster objects a genesis publishes for ``enclave``: head, one MEMBER entry per
    founding node (the first is the owner and an admin) and epoch 1 with its key material."""
    head = RosterHead(
        enclave=enclave, kind=kind, strategy=strategy, policy=Policy(auto_join=auto_join), shards=shards, epoch=1, version=0
    )
    objects = [(roster_id(enclave), head_to_object(enclave, head))]
    seats: dict[bytes, list[str]] = {}
    firsts: dict[bytes, FoundingNode] = {}
    for founder in founders:
        node = node_id_for(founder.key)
        seats.setdefault(node, []).extend([founder.shard] if founder.shard else [])  # a seatless founding MEMBER has shard ""
        firsts.setdefault(node, founder)
    for index, (node, founder) in enumerate(firsts.items()):
        entry = RosterEntry(
            node=node,
            key=founder.key,
            account=founder.account,
            state=MEMBER,
            traits=(ADMIN, OWNER) if index == 0 else (),
            shards=tuple(sorted(seats[node])),
            proof=founder.proof,
        )
        objects.append((entry_id(enclave, node), entry_to_object(enclave, entry)))
    objects.append((epoch_id(enclave, 1), epoch_to_object(enclave, EpochRecord(epoch=1, rekey=rekey))))
    return objects


def read_rekey(data: bytes) -> Rekey | None:
    """The ``Rekey`` an epoch record or an invite holds; None when the bytes are not one."""
    try:
        tree = decode(data)
        if not isinstance(tree, dict) or not isinstance(tree.get("boxes"), list):
            return None
        box_type = MemberBox if tree.get("strategy") == SEAL_TO_ALL else NodeBox
        boxes = tuple(from_wire(box_type, b, "box") for b in tree["boxes"])
        rest = from_wire(Rekey, {**tree, "boxes": []}, "rekey")
        return replace(rest, boxes=boxes)
    except (WireError, ValueError, TypeError):
        return None
