"""The data model: objects, classes, runtimes, accounts, nodes, shards, enclaves.

OBJ-1: the ledger maps a 32-byte object id to a value whose header names the
object's class and owner account, then the body (``fields``).
OBJ-2: every object is owned by one account; an account owns itself.
OBJ-3: accounts are objects of ``ClassAccount`` or a subclass; an enclave
account's class is a subclass bound to one enclave.
OBJ-4: node accounts carry an Ed25519 key and an operator.
CLS-1: a class has a public method table; open classes publish their code,
private classes publish only its hash.
RT-1: runtimes are registered records like classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sagachain.core.encoding import derive_id, encode, hash_value

ACCOUNT_CLASS_NAME = "ClassAccount"
ACCOUNT_CLASS_ID = derive_id("class", ACCOUNT_CLASS_NAME)
PUBLIC_RUNTIME_NAME = "sagapython"
PUBLIC_RUNTIME_ID = derive_id("runtime", PUBLIC_RUNTIME_NAME)

# Permission kinds a method may declare (CMI-1): who may send it.
ALLOW_ANY = "any"
ALLOW_OWNER = "owner"  # the message's sender account owns the target object
ALLOW_SIGNER = "signer"  # the transaction's signer owns the target object
ALLOW_KINDS = (ALLOW_ANY, ALLOW_OWNER, ALLOW_SIGNER)

# Reserved fields of account objects; only the runtime's built-ins write them.
BALANCE_FIELD = "balance"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObject:
    """An object's value (OBJ-1): header (class, owner) and body (fields)."""

    class_id: bytes
    owner: bytes
    fields: dict[str, Any]

    def encode(self) -> bytes:
        return encode(self)

    def with_fields(self, **changes: Any) -> StoredObject:
        return StoredObject(class_id=self.class_id, owner=self.owner, fields={**self.fields, **changes})


def class_id_for(name: str) -> bytes:
    return derive_id("class", name)


def account_id_for(name: str) -> bytes:
    return derive_id("account", name)


def object_id_for(owner: bytes, name: str) -> bytes:
    return derive_id("object", owner, name)


def runtime_id_for(name: str) -> bytes:
    return derive_id("runtime", name)


def node_id_for(public_key: bytes) -> bytes:
    return derive_id("node", public_key)


def account_state_hash(objects: dict[bytes, StoredObject]) -> bytes:
    """Hash of all objects one account owns, in id order (used by L2L and TX-3)."""
    return hash_value([[oid, objects[oid]] for oid in sorted(objects)])


def accounts_state_hash(per_account: dict[bytes, bytes]) -> bytes:
    """Hash of several accounts' state hashes: the TX-3 output state hash."""
    return hash_value([[aid, per_account[aid]] for aid in sorted(per_account)])


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodSig:
    """One entry of a class's public method table (CLS-1)."""

    name: str
    params: tuple[str, ...]
    allow: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassRecord:
    """A class (CLS-1). ``enclave`` is set when the class is bound to one enclave:
    private classes, enclave account classes, and (under the permissive CLS-3
    policy) open classes with a private base."""

    id: bytes
    name: str
    base: bytes | None
    runtime: bytes
    methods: tuple[MethodSig, ...]
    code: str | None
    code_hash: bytes
    private: bool
    enclave: str | None
    owner: bytes | None

    def method(self, name: str) -> MethodSig | None:
        for sig in self.methods:
            if sig.name == name:
                return sig
        return None


def code_hash(code: str) -> bytes:
    return hash_value(["code", code])


ENCLAVE_ACCOUNT_PREFIX = "EnclaveAccount_"


def native_code_hash(name: str) -> bytes:
    """The code hash of a class the runtime implements itself (ClassAccount, enclave account roots)."""
    return code_hash("native:" + name)


def enclave_account_class_name(enclave: str) -> str:
    """The enclave-bound subclass of ClassAccount every account of ``enclave`` derives from (OBJ-3)."""
    return ENCLAVE_ACCOUNT_PREFIX + enclave


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeRecord:
    """A language runtime (RT-1). A private runtime serves one enclave only (RT-2)."""

    id: bytes
    name: str
    private: bool
    enclave: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """A node account (OBJ-4): its Ed25519 key, operator, and the runtimes it can run (RT-3)."""

    id: bytes
    name: str
    public_key: bytes
    operator: str
    runtimes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord:
    """An account's public header (OBJ-3): who it is, its class, its enclave, where it starts.

    Non-enclave nodes need this much of enclave accounts to know they are
    enclave accounts; nothing else of them is public.
    """

    id: bytes
    name: str
    class_id: bytes
    enclave: str | None
    public_key: bytes
    shard: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardRecord:
    """A shard and its committee of authorized node accounts (SH-1, SH-3)."""

    id: str
    enclave: str | None
    committee: tuple[bytes, ...]

    @property
    def is_enclave(self) -> bool:
        return self.enclave is not None

    def committee_hash(self) -> bytes:
        return committee_hash(self.id, self.committee)


def committee_hash(shard: str, committee: tuple[bytes, ...]) -> bytes:
    """What a block header names as its committee (SH-1); an enclave shard's comes from its roster (MEM-1)."""
    return hash_value(["committee", shard, list(committee)])


@dataclass(frozen=True, slots=True, kw_only=True)
class EnclaveRecord:
    """An enclave (SH-4): its shards, its private runtime and its initial state commitment."""

    id: str
    shards: tuple[str, ...]
    runtime: bytes
    account_class: bytes
    state_commitment: bytes
