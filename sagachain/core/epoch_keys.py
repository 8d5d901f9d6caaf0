"""Epoch keys of an enclave: who gets the key after each roster change (MEM-3).

An enclave's off-chain data is sealed under an *epoch key*. Every change that
adds, removes or rotates (changes the node key of) a member starts a new epoch
with a fresh key, published on chain as a :class:`Rekey`. Two strategies sit
behind the one interface, because they trade ciphertext for state:

``seal-to-all``
    The committer draws the epoch key and seals it to every member's X25519
    key. A change costs N boxes (N members after it); nothing but the roster
    has to be remembered between epochs, and a member needs nothing but its
    own seed.

``key-tree``
    A binary key tree (a logical key hierarchy, TreeKEM-style but with public
    node keys, so any party that knows the public tree can commit a change and
    no key server exists). Leaves are the members in slot order; a removed
    member's leaf becomes blank and an added member takes the leftmost blank
    slot, the tree doubling when there is none and halving while its right
    half is blank. An interior node holds an X25519 key pair derived from a
    node secret, and is blank exactly when no member sits below it. A member
    knows the secrets of its ancestors and nothing else. A change at leaf L
    refreshes L's direct path: one path secret is drawn for the lowest node and
    each higher one is its hash; each is sealed to the *resolution* of the
    copath child at that level (the node itself if non-blank, else the
    resolutions of its children), and for an add or a rotate the lowest one
    also to L's new leaf key. The root secret gives the epoch key. On a dense
    tree a change costs about log2 N boxes plus log2 N public path keys; a
    sparse tree degrades towards N. The start seals every interior node once
    (about 2N boxes).

Forward secrecy: a removed member's leaf is blanked and every node it knew (its
ancestors) gets a fresh secret sealed only to the others, so nothing it holds
opens a later box. Forward-only reading: a new member receives secrets drawn in
its join epoch only, and every epoch key comes from freshly drawn secrets, never
from earlier ones, so it cannot compute an earlier key. Rotating a key refreshes
the rotated member's path, so its old node key opens nothing from then on.

What the public check (:meth:`KeySchedule.problem`) verifies, from public data
alone: the enclave, strategy and epoch order; that the change fits the roster;
that the boxes are addressed to exactly the right recipients (every member after
the change, or the resolution of each copath node) and hold one secret each;
that the tree's path keys are exactly the refreshed nodes'. What it cannot
verify: that the boxes hold the right secrets or that the path keys belong to
them. Each recipient checks what it opens against the public ``key_id`` and its
own ancestors' path keys (:meth:`Keyring.absorb`), so members that accept an
epoch agree on its key. Whoever commits a change learns that epoch's key, and in
the key tree the secrets of the refreshed path: honest code (:meth:`KeySchedule.commit`)
forgets them, but a committer that keeps them can read, until those nodes are
refreshed again, what is sealed to them, even after its own removal; seal-to-all
leaves a committer nothing beyond the one epoch.

Every box carries associated data binding the enclave, the epoch, the strategy,
the change and its recipient (node id, or tree node index), so no box can be
replayed into another epoch, another change or to another recipient.
Randomness comes only from the ``entropy`` parameter (``sealing.Entropy``).

Replaying the chain: ``schedule = KeySchedule(enclave, strategy)`` is the empty
schedule at epoch 0; applying every published Rekey in order, starting with the
``start`` one (its ``change.members`` lists the initial members in slot order),
rebuilds the public state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nacl.bindings import crypto_scalarmult
from nacl.exceptions import CryptoError

from sagachain.core.encoding import encode, hash_value
from sagachain.core.keys import KeyPair
from sagachain.core.sealing import (
    KEY_SIZE,
    OVERHEAD,
    Entropy,
    open_sealed,
    seal,
    x25519_public,
    x25519_public_of_secret,
    x25519_secret,
)
from sagachain.errors import InputError

RULE = "MEM-3"

SEAL_TO_ALL = "seal-to-all"
KEY_TREE = "key-tree"
STRATEGIES = (SEAL_TO_ALL, KEY_TREE)

START = "start"
ADD = "add"
REMOVE = "remove"
ROTATE = "rotate"
OPS = (START, ADD, REMOVE, ROTATE)

NODE_ID_SIZE = 32
BOX_SIZE = OVERHEAD + KEY_SIZE  # every box holds one 32-byte secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A node and its Ed25519 public key, as a start lists them."""

    node: bytes
    key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What one epoch does to the membership.

    ``start`` lists the initial members, in slot order, in ``members`` (and
    leaves ``node`` and ``key`` empty); ``add`` and ``rotate`` carry the node
    and its new key; ``remove`` the node only.
    """

    op: str
    node: bytes = b""
    key: bytes = b""
    members: tuple[Member, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberBox:
    """Seal-to-all: the epoch key sealed to member ``node``'s X25519 key."""

    node: bytes
    sealed: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBox:
    """Key tree: a secret sealed to tree node ``index``'s key. It holds the path secret
    of the lowest refreshed node above ``index``."""

    index: int
    sealed: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PathKey:
    """Key tree: the new X25519 public key of refreshed tree node ``index``."""

    index: int
    public: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Rekey:
    """The key material that starts one epoch, as it goes on chain.

    ``key_id`` lets a member check it opened the right key and reveals nothing
    about it. ``boxes`` are ``MemberBox`` records (seal-to-all, in slot order) or
    ``NodeBox`` records (key tree, by node index); ``path`` lists the refreshed
    tree nodes' new keys, lowest level first (empty for seal-to-all).
    """

    enclave: str
    epoch: int
    strategy: str
    change: Change
    key_id: bytes
    boxes: tuple[MemberBox, ...] | tuple[NodeBox, ...]
    path: tuple[PathKey, ...] = ()

    def sealed_bytes(self) -> int:
        """Bytes of ciphertext in the boxes: what the strategy costs."""
        return sum(len(box.sealed) for box in self.boxes)


def key_id(enclave: str, epoch: int, key: bytes) -> bytes:
    return hash_value(["epoch-key-id", enclave, epoch, key])


# The tree is stored as an array (RFC 9420, appendix C): leaf slot i is node 2i,
# interior nodes sit at odd indices, a node's level is its number of trailing
# one bits, and a tree of W leaves (a power of two) has its root at W - 1.

def _level(x: int) -> int:
    return (~x & (x + 1)).bit_length() - 1


def _children(x: int) -> tuple[int, int]:
    half = 1 << (_level(x) - 1)
    return x - half, x + half


def _parent(x: int) -> int:
    k = _level(x)
    return x - (1 << k) if (x >> (k + 1)) & 1 else x + (1 << k)


def _ancestors(x: int, width: int) -> list[int]:
    """The direct path of node ``x`` in a tree of ``width`` leaves, up to and including the root."""
    root, path = width - 1, []
    while x != root:
        x = _parent(x)
        path.append(x)
    return path


def _leaf_slots(x: int) -> range:
    span = (1 << _level(x)) - 1
    return range((x - span) // 2, (x + span) // 2 + 1)


@lru_cache(maxsize=8192)
def _x25519(ed25519_public: bytes) -> bytes:
    """Converting a key costs a field inversion: members' keys are converted once per process."""
    return x25519_public(ed25519_public)


@lru_cache(maxsize=8192)
def _usable_x25519(public: bytes) -> bool:
    """libsodium refuses to seal to a low-order point: a committer that published one as a
    path key would make every later seal to that tree node fail, so the public check refuses it."""
    try:
        crypto_scalarmult(_PROBE_SCALAR, public)
    except (CryptoError, ValueError, TypeError):
        return False
    return True


_PROBE_SCALAR = hash_value(["x25519-probe"])


def _key_problem(key: bytes, what: str) -> str | None:
    if len(key) != 32:
        return f"{what} must be a 32-byte Ed25519 public key, got {len(key)} bytes"
    try:
        _x25519(key)
    except InputError:
        return f"{what} {key[:8].hex()}... is not a valid Ed25519 public key: use the node's real key"
    return None


def _draw(entropy: Entropy) -> bytes:
    secret = entropy(KEY_SIZE)
    if len(secret) != KEY_SIZE:
        raise ValueError("entropy must return exactly the number of bytes asked for")
    return secret


def _next_path_secret(secret: bytes) -> bytes:
    return hash_value(["path-secret", secret])


def _node_secret(path_secret: bytes) -> bytes:
    """X25519 clamps any 32 bytes into a scalar, so a hash is a secret key."""
    return hash_value(["tree-node-key", path_secret])


def _epoch_key(enclave: str, epoch: int, root_secret: bytes) -> bytes:
    return hash_value(["epoch-key", enclave, epoch, root_secret])


def _contexts(enclave: str, epoch: int, strategy: str, change: Change) -> Callable[[bytes | int], bytes]:
    """Associated data of each box of one rekey, by recipient (node id or tree node index).

    The change is hashed once per rekey: a start's change lists every member."""
    change_hash = hash_value(change)
    return lambda recipient: encode(["sagachain-epoch-key-box", enclave, epoch, strategy, change_hash, recipient])


def _short(node: bytes) -> str:
    return node[:8].hex()


@dataclass(slots=True)
class _Plan:
    """What a change does to the public state, computed from public data only."""

    slots: list[bytes | None]
    members: dict[bytes, bytes]
    refreshed: list[int]  # key tree: nodes that get a new secret, lowest level first
    sources: dict[int, int]  # refreshed node -> the refreshed child its secret is hashed from
    kept: set[int]  # key tree: interior nodes that keep their key
    recipients: dict[int, int]  # key tree: box index -> refreshed node whose secret it carries


class KeySchedule:
    """The public state of an enclave's key distribution.

    Anyone rebuilds it by applying every Rekey in order to ``KeySchedule(enclave,
    strategy)``; it holds no secret.
    """

    def __init__(self, enclave: str, strategy: str) -> None:
        if strategy not in STRATEGIES:
            raise InputError(f"unknown key distribution strategy {strategy!r}: use one of {', '.join(STRATEGIES)}", rule=RULE)
        self.enclave = enclave
        self.strategy = strategy
        self.epoch = 0
        self.members: dict[bytes, bytes] = {}
        self._slots: list[bytes | None] = []
        self._nodes: dict[int, bytes] = {}  # key tree: non-blank interior node -> X25519 public key

    @classmethod
    def start(cls, enclave: str, strategy: str, members: list[tuple[bytes, bytes]], entropy: Entropy) -> tuple[KeySchedule, Rekey, bytes]:
        """The schedule at epoch 1 for these (node, Ed25519 key) members, its Rekey and the epoch key."""
        schedule = cls(enclave, strategy)
        change = Change(op=START, members=tuple(Member(node=node, key=key) for node, key in members))
        rekey, key = schedule.commit(change, entropy)
        schedule.apply(rekey)
        return schedule, rekey, key

    def slots(self) -> dict[bytes, int]:
        """Each member's leaf slot (the key tree's leaf index; seal-to-all keeps the same order)."""
        return {node: i for i, node in enumerate(self._slots) if node is not None}

    def copy(self) -> KeySchedule:
        other = KeySchedule(self.enclave, self.strategy)
        other.epoch = self.epoch
        other.members = dict(self.members)
        other._slots = list(self._slots)
        other._nodes = dict(self._nodes)
        return other

    def problem(self, rekey: Rekey) -> str | None:
        """Why ``rekey`` cannot be the next epoch's, judged from public data only; None when it can."""
        return self._judge(rekey)[0]

    def apply(self, rekey: Rekey) -> None:
        """Advance to ``rekey``'s epoch; InputError (MEM-3) when :meth:`problem` finds one."""
        after = self._successor(rekey)[0]
        self.epoch, self.members, self._slots, self._nodes = after.epoch, after.members, after._slots, after._nodes

    def commit(self, change: Change, entropy: Entropy) -> tuple[Rekey, bytes]:
        """The next epoch's Rekey for ``change`` and the new epoch key; the schedule is not advanced."""
        trouble = self._change_problem(change)
        if trouble is not None:
            raise InputError(f"cannot commit {change.op!r} for epoch {self.epoch + 1}: {trouble}", rule=RULE)
        plan = self._plan(change)
        epoch = self.epoch + 1
        context = _contexts(self.enclave, epoch, self.strategy, change)
        if self.strategy == SEAL_TO_ALL:
            key = _draw(entropy)
            boxes: tuple[MemberBox, ...] | tuple[NodeBox, ...] = tuple(
                MemberBox(node=node, sealed=seal(_x25519(ed), key, context(node), entropy))
                for node, ed in plan.members.items()
            )
            path: tuple[PathKey, ...] = ()
        else:
            secrets: dict[int, bytes] = {}
            for x in plan.refreshed:
                source = plan.sources.get(x)
                secrets[x] = _draw(entropy) if source is None else _next_path_secret(secrets[source])
            publics = {x: x25519_public_of_secret(_node_secret(s)) for x, s in secrets.items()}
            boxes = tuple(
                NodeBox(index=r, sealed=seal(self._public_of(r, plan, publics), secrets[p], context(r), entropy))
                for r, p in sorted(plan.recipients.items())
            )
            path = tuple(PathKey(index=x, public=publics[x]) for x in plan.refreshed)
            key = _epoch_key(self.enclave, epoch, secrets[plan.refreshed[-1]])
        rekey = Rekey(enclave=self.enclave, epoch=epoch, strategy=self.strategy, change=change,
                      key_id=key_id(self.enclave, epoch, key), boxes=boxes, path=path)
        return rekey, key

    def _public_of(self, x: int, plan: _Plan, fresh: dict[int, bytes]) -> bytes:
        """The X25519 key of tree node ``x`` after the change: a member's leaf, a refreshed or a kept node."""
        if x % 2 == 0:
            node = plan.slots[x // 2]
            assert node is not None
            return _x25519(plan.members[node])
        return fresh[x] if x in fresh else self._nodes[x]

    def _successor(self, rekey: Rekey) -> tuple[KeySchedule, _Plan]:
        trouble, plan = self._judge(rekey)
        if trouble is not None or plan is None:
            raise InputError(f"rekey for epoch {rekey.epoch} of enclave {rekey.enclave!r} refused: {trouble}", rule=RULE)
        after = KeySchedule(self.enclave, self.strategy)
        after.epoch = rekey.epoch
        after.members = plan.members
        after._slots = plan.slots
        after._nodes = {x: self._nodes[x] for x in plan.kept}
        after._nodes.update((p.index, p.public) for p in rekey.path)
        return after, plan

    def _judge(self, rekey: Rekey) -> tuple[str | None, _Plan | None]:
        if rekey.enclave != self.enclave:
            return f"it is for enclave {rekey.enclave!r}, this schedule is enclave {self.enclave!r}", None
        if rekey.strategy != self.strategy:
            return f"it uses strategy {rekey.strategy!r}, enclave {self.enclave!r} uses {self.strategy!r}", None
        if rekey.epoch != self.epoch + 1:
            why = "it replays an epoch already applied" if rekey.epoch <= self.epoch else "earlier rekeys are missing: apply them in order"
            return f"it is for epoch {rekey.epoch}, the next epoch is {self.epoch + 1} ({why})", None
        trouble = self._change_problem(rekey.change)
        if trouble is not None:
            return trouble, None
        if len(rekey.key_id) != 32:
            return f"key_id must be 32 bytes, got {len(rekey.key_id)}", None
        for box in rekey.boxes:
            if len(box.sealed) != BOX_SIZE:
                return f"a box must be {BOX_SIZE} bytes (one sealed 32-byte secret), got {len(box.sealed)}", None
        plan = self._plan(rekey.change)
        if self.strategy == SEAL_TO_ALL:
            trouble = self._seal_to_all_problem(rekey, plan)
        else:
            trouble = self._tree_problem(rekey, plan)
        return (trouble, None) if trouble is not None else (None, plan)

    def _seal_to_all_problem(self, rekey: Rekey, plan: _Plan) -> str | None:
        if rekey.path:
            return f"a {SEAL_TO_ALL} rekey carries no path keys, this one has {len(rekey.path)}"
        if not all(isinstance(box, MemberBox) for box in rekey.boxes):
            return f"a {SEAL_TO_ALL} rekey holds MemberBox records only"
        got = [box.node for box in rekey.boxes if isinstance(box, MemberBox)]
        return _addressing_problem(got, list(plan.members), "member", _short)

    def _tree_problem(self, rekey: Rekey, plan: _Plan) -> str | None:
        if not all(isinstance(box, NodeBox) for box in rekey.boxes):
            return f"a {KEY_TREE} rekey holds NodeBox records only"
        got = [box.index for box in rekey.boxes if isinstance(box, NodeBox)]
        trouble = _addressing_problem(got, sorted(plan.recipients), "tree node", str)
        if trouble is not None:
            return trouble + " (the resolution of each copath node after the change)"
        path = [p.index for p in rekey.path]
        if path != plan.refreshed:
            return f"path keys are for tree nodes {path}, the change refreshes {plan.refreshed} (lowest first)"
        for p in rekey.path:
            if len(p.public) != 32 or not _usable_x25519(p.public):
                return f"the path key of tree node {p.index} ({p.public[:8].hex()}...) is not a usable X25519 public key"
        return None

    def _change_problem(self, change: Change) -> str | None:
        """Why ``change`` does not fit the current members; None when it does."""
        if change.op not in OPS:
            return f"unknown change {change.op!r}: use one of {', '.join(OPS)}"
        if change.op == START:
            if self.epoch != 0:
                return f"the enclave already started (it is at epoch {self.epoch}): commit add, remove or rotate changes"
            if change.node or change.key:
                return "a start lists its members in change.members and leaves node and key empty"
            if not change.members:
                return "a start needs at least one member"
            seen: set[bytes] = set()
            for member in change.members:
                if len(member.node) != NODE_ID_SIZE:
                    return f"node id {member.node.hex()!r} must be {NODE_ID_SIZE} bytes, got {len(member.node)}"
                if member.node in seen:
                    return f"node {_short(member.node)} is listed twice in the start: list each member once"
                seen.add(member.node)
                trouble = _key_problem(member.key, f"the key of node {_short(member.node)}")
                if trouble is not None:
                    return trouble
            return None
        if self.epoch == 0:
            return f"the enclave has not started: commit a {START!r} change first"
        if change.members:
            return f"only a start lists members, this {change.op!r} lists {len(change.members)}"
        if len(change.node) != NODE_ID_SIZE:
            return f"node id {change.node.hex()!r} must be {NODE_ID_SIZE} bytes, got {len(change.node)}"
        present = change.node in self.members
        name = _short(change.node)
        if change.op == ADD:
            if present:
                return f"node {name} is already a member: rotate its key or remove it first"
            return _key_problem(change.key, f"the key of added node {name}")
        if change.op == REMOVE:
            if not present:
                return f"node {name} is not a member: there is nothing to remove"
            if change.key:
                return f"a remove carries no key, this one carries {len(change.key)} bytes"
            if len(self.members) == 1:
                return f"node {name} is the last member: add another member before removing it"
            return None
        if not present:
            return f"node {name} is not a member: add it instead of rotating its key"
        if change.key == self.members[change.node]:
            return f"the rotate carries node {name}'s current key: rotate to a new key"
        return _key_problem(change.key, f"the new key of node {name}")

    def _plan(self, change: Change) -> _Plan:
        """The public effect of a change that :meth:`_change_problem` accepted."""
        tree = self.strategy == KEY_TREE
        slots = list(self._slots)
        leaf = -1
        if change.op == START:
            slots = [m.node for m in change.members]
            keys = {m.node: m.key for m in change.members}
            if tree:
                width = max(2, 1 << (len(slots) - 1).bit_length())
                slots.extend([None] * (width - len(slots)))
        else:
            keys = dict(self.members)
            if change.op == ADD:
                leaf = slots.index(None) if None in slots else len(slots)
                if leaf == len(slots):
                    slots.extend([None] * (len(slots) if tree else 1))
                slots[leaf] = change.node
                keys[change.node] = change.key
            elif change.op == REMOVE:
                leaf = slots.index(change.node)
                slots[leaf] = None
                del keys[change.node]
                while tree and len(slots) > 2 and not any(slots[len(slots) // 2:]):
                    del slots[len(slots) // 2:]
                while not tree and slots[-1] is None:
                    slots.pop()
            else:
                leaf = slots.index(change.node)
                keys[change.node] = change.key
        members = {node: keys[node] for node in slots if node is not None}
        plan = _Plan(slots=slots, members=members, refreshed=[], sources={}, kept=set(), recipients={})
        if tree:
            self._plan_tree(plan, leaf)
        return plan

    def _plan_tree(self, plan: _Plan, leaf: int) -> None:
        slots = plan.slots
        width = len(slots)
        root = width - 1

        def occupied(x: int) -> bool:
            return any(slots[i] is not None for i in _leaf_slots(x))

        if leaf < 0:
            refreshed = [x for x in range(1, 2 * width - 1, 2) if occupied(x)]
            refreshed.sort(key=lambda x: (_level(x), x))
            stale: set[int] = set()
        elif leaf < width:
            stale = set(_ancestors(2 * leaf, width))
            refreshed = [x for x in _ancestors(2 * leaf, width) if occupied(x)]
        else:  # the removed leaf's half was truncated away: only the new root needs a fresh secret
            stale = set()
            refreshed = [root]
        fresh = set(refreshed)
        kept = {x for x in self._nodes if x < 2 * width - 1 and x not in stale and x not in fresh}
        nonblank = kept | fresh

        def resolution(x: int) -> list[int]:
            if x % 2 == 0:
                return [x] if slots[x // 2] is not None else []
            if x in nonblank:
                return [x]
            left, right = _children(x)
            return resolution(left) + resolution(right)

        for x in refreshed:
            left, right = _children(x)
            source = left if left in fresh else right if right in fresh else None
            if source is not None:
                plan.sources[x] = source
            for child in (left, right):
                if child != source:
                    for r in resolution(child):
                        plan.recipients[r] = x
        plan.refreshed = refreshed
        plan.kept = kept


def _addressing_problem(got: Sequence[Any], expected: Sequence[Any], what: str, name: Callable[[Any], str]) -> str | None:
    """Boxes addressed to exactly the expected recipients, each once; else which are wrong."""
    counts = Counter(got)
    wanted = set(expected)
    missing = [e for e in expected if e not in counts]
    extra = sorted(g for g in counts if g not in wanted)
    doubled = sorted(g for g, n in counts.items() if n > 1 and g in wanted)
    parts = []
    if missing:
        parts.append(f"no box for {what} {', '.join(name(m) for m in missing)}")
    if extra:
        parts.append(f"a box for {what} {', '.join(name(e) for e in extra)}, which should get none")
    if doubled:
        parts.append(f"more than one box for {what} {', '.join(name(d) for d in doubled)}")
    return "; ".join(parts) or None


class Keyring:
    """One member's secrets: its own node key, the epoch keys it opened and, for the key
    tree, the secrets of its ancestors. It needs nothing secret but its own seed."""

    def __init__(self, enclave: str, node: bytes, ed25519_seed: bytes) -> None:
        self.enclave = enclave
        self.node = node
        self.keys: dict[int, bytes] = {}
        self._tree: dict[int, bytes] = {}  # tree node index -> X25519 secret, for this member's ancestors
        self._public = b""
        self._leaf_secret = b""
        self.rotate(ed25519_seed)

    def rotate(self, new_seed: bytes) -> None:
        """The member's node key changed: call before absorbing the Rekey that rotates it."""
        if len(new_seed) != 32:
            raise InputError(f"a node key seed is 32 bytes, got {len(new_seed)}: pass the node's Ed25519 seed", rule=RULE)
        self._public = KeyPair(new_seed).public
        self._leaf_secret = x25519_secret(new_seed)

    def absorb(self, schedule_before: KeySchedule, rekey: Rekey) -> bytes | None:
        """Process the next Rekey; ``schedule_before`` is the public schedule before it is applied.

        Returns the epoch key when this member can open it (and keeps it in ``keys``), None when the
        rekey is not for it (not a member after the change, or its key is not the one on the roster).
        Raises InputError (MEM-3) when the rekey is publicly malformed, or when what it opens does not
        match the public ``key_id`` or path keys: the committer sealed inconsistent keys.
        """
        if schedule_before.enclave != self.enclave:
            raise InputError(f"this keyring is for enclave {self.enclave!r}, the schedule is {schedule_before.enclave!r}: "
                             "pass the schedule of the keyring's enclave", rule=RULE)
        after, plan = schedule_before._successor(rekey)
        if after.members.get(self.node) != self._public:
            if self.node not in after.members:
                self._tree.clear()  # a removed member has no use for secrets that are all refreshed
            return None
        tree: dict[int, bytes] = {}
        if rekey.strategy == SEAL_TO_ALL:
            key = self._open_box(rekey)
        else:
            opened = self._open_path(after, plan, rekey)
            key, tree = opened if opened is not None else (None, {})
        if key is None:
            return None
        if key_id(rekey.enclave, rekey.epoch, key) != rekey.key_id:
            raise InputError(f"the key node {_short(self.node)} opened for epoch {rekey.epoch} does not match the rekey's "
                             "key_id: the committer sealed inconsistent keys; refuse this rekey and have it committed again",
                             rule=RULE)
        self._tree = tree
        self.keys[rekey.epoch] = key
        return key

    def _open_box(self, rekey: Rekey) -> bytes | None:
        for box in rekey.boxes:
            if isinstance(box, MemberBox) and box.node == self.node:
                context = _contexts(rekey.enclave, rekey.epoch, rekey.strategy, rekey.change)
                return open_sealed(self._leaf_secret, box.sealed, context(self.node))
        return None

    def _open_path(self, after: KeySchedule, plan: _Plan, rekey: Rekey) -> tuple[bytes, dict[int, bytes]] | None:
        """Walk up from this member's leaf: a refreshed ancestor's secret is hashed from the child
        below it when that child was refreshed on the same chain, else opened from the one box
        addressed to a node this member knows."""
        leaf = 2 * after._slots.index(self.node)
        width = len(after._slots)
        boxes = {box.index: box.sealed for box in rekey.boxes if isinstance(box, NodeBox)}
        path_keys = {p.index: p.public for p in rekey.path}
        refreshed = set(plan.refreshed)
        context = _contexts(rekey.enclave, rekey.epoch, rekey.strategy, rekey.change)
        known = {leaf: self._leaf_secret}
        path_secrets: dict[int, bytes] = {}
        below = [leaf]
        for x in _ancestors(leaf, width):
            if x not in refreshed:
                if x in self._tree:
                    known[x] = self._tree[x]
                below.append(x)
                continue
            source = plan.sources.get(x)
            if source is not None and source in path_secrets:
                secret = _next_path_secret(path_secrets[source])
            else:
                holders = [r for r in below if plan.recipients.get(r) == x and r in known and r in boxes]
                if not holders:
                    return None
                opened = open_sealed(known[holders[0]], boxes[holders[0]], context(holders[0]))
                if opened is None:
                    return None
                secret = opened
            path_secrets[x] = secret
            known[x] = _node_secret(secret)
            if x25519_public_of_secret(known[x]) != path_keys[x]:
                raise InputError(f"the path key of tree node {x} in the rekey for epoch {rekey.epoch} does not match the "
                                 "secret sealed to this member: the committer sealed inconsistent keys; refuse this rekey "
                                 "and have it committed again", rule=RULE)
            below.append(x)
        tree = {x: s for x, s in known.items() if x != leaf}
        return _epoch_key(rekey.enclave, rekey.epoch, path_secrets[width - 1]), tree
