"""Roster calls from named values: the script, the membership change and the public schedule.

Two callers build roster transactions: the simulator's membership driver
(``sagachain.sim.membership``) and the operator's ``sagachain enclave``
commands. Both need the same three things, so they live here once, pure (no
I/O; the only randomness is the ``entropy`` a caller hands to
``KeySchedule.commit``):

- the one-line script that calls a roster method, from the values of its
  parameters by name (``ROSTER_METHODS`` gives the names and their order), so
  a caller cannot pass arguments in the wrong order;
- the :class:`Change` a method makes to the members (MEM-3), which decides
  whether the call needs key material at all: blocking a node that is not a
  MEMBER starts no epoch. It mirrors ``rules.membership.membership_change``,
  which reads the same change back from a published transition; the tests
  hold the two to agreement;
- the roster as public objects read it (head, entries, epoch records) and
  the public ``KeySchedule`` rebuilt from the epoch records in order, exactly
  as ``ChainState`` advances it, so key material built from a node's answer
  is what the node's own check expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sagachain.core.encoding import decode, encode
from sagachain.core.epoch_keys import ADD, REMOVE, ROTATE, Change, KeySchedule
from sagachain.core.keys import KeyPair, verify
from sagachain.core.objects import StoredObject, node_id_for
from sagachain.core.roster import (
    ADMIN,
    MEMBER,
    OWNER,
    EpochRecord,
    RosterEntry,
    RosterHead,
    entry_id,
    entry_of,
    epoch_id,
    epoch_of,
    head_of,
    key_proof_message,
    read_rekey,
    roster_id,
)
from sagachain.core.system import ROSTER_METHODS, call_script
from sagachain.errors import InputError

RULE = "MEM-2"
ROSTER_ALIAS = "roster"  # the name a roster transaction gives the roster account in its script

# Gas of a roster transaction beyond its script's bytes and the key material it stores twice at
# most (an invite's escrow in the entry, then the epoch record): head, entry, call, log.
GAS_HEADROOM = 20_000

Value = bytes | str | int | list[str]

# Methods whose change is to the node the call names, with the key the call brings (a new entry's
# or a rotation's), and methods whose added node's key is the one its entry already holds.
_NEW_KEY_ADDS = ("invite", "join")
_ENTRY_KEY_ADDS = ("approve", "accept")
_REMOVALS = ("remove", "block")
_NO_CHANGE = ("apply", "decline", "unblock", "grant", "revoke")


def roster_script(method: str, values: Mapping[str, Value], alias: str = ROSTER_ALIAS) -> str:
    """The script calling ``alias.method(...)`` with ``values`` given by parameter name.

    Every parameter of the method must be named, and nothing else: a value
    under a wrong name would otherwise land silently in another parameter.
    """
    params = ROSTER_METHODS.get(method)
    if params is None:
        raise InputError(f"roster method {method!r} does not exist; the roster's methods are {', '.join(sorted(ROSTER_METHODS))}", rule=RULE)
    missing = [p for p in params if p not in values]
    unknown = sorted(set(values) - set(params))
    if missing or unknown:
        problems = ([f"missing {missing}"] if missing else []) + ([f"not its parameters {unknown}"] if unknown else [])
        raise InputError(f"roster.{method} takes ({', '.join(params)}): {'; '.join(problems)}", rule=RULE)
    try:
        return call_script(alias, method, [values[p] for p in params])
    except ValueError as exc:
        raise InputError(f"roster.{method}: {exc}", rule=RULE) from None


def takes_rekey(method: str) -> bool:
    """Whether ``method`` is passed key material (MEM-3); accept uses the invite's escrowed one."""
    return "rekey" in ROSTER_METHODS.get(method, ())


def roster_change(method: str, node: bytes, entry: RosterEntry | None, key: bytes = b"") -> Change | None:
    """The change to the members (MEM-3) that calling ``method`` on ``node`` makes; None for none.

    ``entry`` is the node's roster entry before the call (None: no entry);
    ``key`` the node key the call brings (invite, join, rotate). The same
    table as ``rules.membership.membership_change``, read from the call
    instead of from its published result.
    """
    if method in _NEW_KEY_ADDS or method == "rotate":
        if not key:
            raise InputError(f"roster.{method} of node {node.hex()[:12]} needs the node key it brings", rule="MEM-3")
        return Change(op=ROTATE if method == "rotate" else ADD, node=node, key=key)
    if method in _ENTRY_KEY_ADDS:
        if entry is None:
            raise InputError(f"roster.{method}: node {node.hex()[:12]} has no roster entry, so there is nothing to {method}", rule=RULE)
        return Change(op=ADD, node=node, key=entry.key)
    if method in _REMOVALS:
        return Change(op=REMOVE, node=node) if entry is not None and entry.state == MEMBER else None
    if method in _NO_CHANGE:
        return None
    raise InputError(f"roster method {method!r} does not exist; the roster's methods are {', '.join(sorted(ROSTER_METHODS))}", rule=RULE)


def gas_limit(script: str, rekey: bytes) -> int:
    """Gas enough for a roster transaction: its script, the key material stored (up to twice), the rest."""
    return len(script.encode()) + 4 * len(rekey) + GAS_HEADROOM


def key_proof(enclave: str, node: bytes, key: KeyPair, account: bytes) -> bytes:
    """``key``'s signature binding it to ``node`` of ``enclave`` and the account acting for it.

    ``node`` is the id of the node's first key: a new key's own id to apply,
    join or be invited, the unchanged node id to rotate.
    """
    return key.sign(key_proof_message(enclave, node, key.public, account))


# -- key packages: what an invitee hands to an admin -------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPackage:
    """A node key, the account that will act for the node, and the key's proof of both (MEM-2)."""

    enclave: str
    key: bytes
    account: bytes
    proof: bytes

    @property
    def node(self) -> bytes:
        return node_id_for(self.key)

    def to_hex(self) -> str:
        return encode({"enclave": self.enclave, "key": self.key, "account": self.account, "proof": self.proof}).hex()

    @classmethod
    def from_hex(cls, text: str) -> KeyPackage:
        """A package as ``to_hex`` wrote it, its proof checked; InputError says what is wrong."""
        try:
            tree = decode(bytes.fromhex(text.strip()))
        except ValueError:
            raise InputError("the key package is not the hex that `sagachain enclave key-package` prints; copy it whole", rule=RULE) from None
        fields = ("account", "enclave", "key", "proof")
        if not isinstance(tree, dict) or sorted(tree) != list(fields):
            raise InputError(f"the key package must hold exactly {', '.join(fields)}; make it again with `sagachain enclave key-package`", rule=RULE)
        enclave, key, account, proof = tree["enclave"], tree["key"], tree["account"], tree["proof"]
        if not isinstance(enclave, str) or not all(isinstance(v, bytes) for v in (key, account, proof)) or len(key) != 32 or len(account) != 32:
            raise InputError("the key package's enclave must be text and its key and account 32 bytes each", rule=RULE)
        package = cls(enclave=enclave, key=key, account=account, proof=proof)
        if not verify(key, key_proof_message(enclave, package.node, key, account), proof):
            raise InputError(f"the key package's proof does not verify for node {package.node.hex()[:12]}: it was not signed by that node key", rule=RULE)
        return package


def make_key_package(enclave: str, key: KeyPair, account: bytes) -> KeyPackage:
    return KeyPackage(enclave=enclave, key=key.public, account=account, proof=key_proof(enclave, node_id_for(key.public), key, account))


# -- the roster read from its public objects ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterView:
    """One enclave's roster as its account's public objects hold it, with the key schedule they imply."""

    enclave: str
    head: RosterHead
    entries: dict[bytes, RosterEntry]  # node id -> entry, in node id order
    epochs: dict[int, EpochRecord]
    schedule: KeySchedule

    def owner(self) -> RosterEntry | None:
        return next((e for e in self.entries.values() if e.has(OWNER)), None)

    def admins_acting_through(self, account: bytes) -> list[RosterEntry]:
        """The MEMBERs with the admin trait whose entry names ``account`` as acting for them."""
        return [e for e in self.entries.values() if e.account == account and e.state == MEMBER and e.has(ADMIN)]


def read_roster(enclave: str, objects: Mapping[bytes, StoredObject]) -> RosterView:
    """The roster of ``enclave`` from the objects its account owns (object id -> object).

    The schedule starts empty and takes the epoch records 1..head.epoch in
    order; a record whose key material the schedule refuses leaves it where
    it was, as ``ChainState._advance_schedule`` does. A missing record means
    the objects are not the roster's whole set, which is an error.
    """
    head = head_of(objects.get(roster_id(enclave)))
    if head is None or head.enclave != enclave:
        raise InputError(f"no roster head for enclave {enclave!r} among the roster account's objects: is {enclave!r} an enclave of this chain?", rule="MEM-1")
    entries: dict[bytes, RosterEntry] = {}
    epochs: dict[int, EpochRecord] = {}
    for oid, obj in objects.items():
        entry = entry_of(obj)
        if entry is not None and oid == entry_id(enclave, entry.node):
            entries[entry.node] = entry
        record = epoch_of(obj)
        if record is not None and oid == epoch_id(enclave, record.epoch):
            epochs[record.epoch] = record
    schedule = KeySchedule(enclave, head.strategy)
    for epoch in range(1, head.epoch + 1):
        if epoch not in epochs:
            raise InputError(f"the roster of {enclave!r} is at epoch {head.epoch} but the key material of epoch {epoch} is not among its objects; ask the node again", rule="MEM-3")
        rekey = read_rekey(epochs[epoch].rekey)
        if rekey is not None and schedule.problem(rekey) is None:
            schedule.apply(rekey)
    return RosterView(enclave=enclave, head=head, entries=dict(sorted(entries.items())), epochs=epochs, schedule=schedule)
