"""An enclave's off-chain state: its accounts' objects and its private code.

Only the enclave's own nodes hold this (MEM-4: encrypted at rest and in
transit; here ``seal``/``unseal`` with the enclave key). The chain carries
only hashes of it (TX-3). The store also keeps, for every enclave transaction,
the output state of the accounts it touched, so that a rollback (TX-7) can
restore an earlier state by its hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nacl.secret

from sagachain.core.block import EntryRef
from sagachain.core.encoding import decode, encode, hash_value
from sagachain.core.objects import StoredObject, account_state_hash, accounts_state_hash
from sagachain.core.wire import WireError, from_wire, to_wire
from sagachain.errors import InputError

KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE


@dataclass
class EnclaveStore:
    enclave: str
    objects: dict[bytes, StoredObject] = field(default_factory=dict)
    private_code: dict[bytes, str] = field(default_factory=dict)
    snapshots: dict[EntryRef, dict[bytes, dict[bytes, StoredObject]]] = field(default_factory=dict)

    def objects_of(self, account: bytes) -> dict[bytes, StoredObject]:
        return {oid: obj for oid, obj in self.objects.items() if obj.owner == account}

    def account_hash(self, account: bytes) -> bytes:
        return account_state_hash(self.objects_of(account))

    def state_hash(self, accounts: list[bytes]) -> bytes:
        """TX-3: the output state hash over the given enclave accounts."""
        return accounts_state_hash({a: self.account_hash(a) for a in accounts})

    def commitment(self) -> bytes:
        """The hash genesis publishes for the enclave's initial state and code."""
        return hash_value(["enclave-state", self.enclave, _objects_wire(self.objects), _code_wire(self.private_code)])

    def write(self, writes: dict[bytes, StoredObject | None]) -> None:
        for oid, value in writes.items():
            if value is None:
                self.objects.pop(oid, None)
            else:
                self.objects[oid] = value

    def restore(self, ref: EntryRef) -> bool:
        """TX-7: put the accounts of ``ref``'s transaction back as they were after it."""
        saved = self.snapshots.get(ref)
        if saved is None:
            return False
        for account, objects in saved.items():
            for oid in list(self.objects_of(account)):
                del self.objects[oid]
            self.objects.update(objects)
        return True

    def adopt(self, other: EnclaveStore) -> None:
        """Take ``other``'s contents in place: whoever holds this store sees the new state."""
        self.objects = other.objects
        self.private_code = other.private_code
        self.snapshots = other.snapshots

    def copy(self) -> EnclaveStore:
        return EnclaveStore(self.enclave, dict(self.objects), dict(self.private_code), dict(self.snapshots))

    # -- sealed bundle (MEM-4) ------------------------------------------------

    def to_bytes(self) -> bytes:
        return encode({"enclave": self.enclave, "objects": _objects_wire(self.objects), "code": _code_wire(self.private_code)})

    @classmethod
    def from_bytes(cls, data: bytes) -> EnclaveStore:
        try:
            tree = decode(data)
            objects = {oid: from_wire(StoredObject, value, "object") for oid, value in tree["objects"]}
            code = {cid: text for cid, text in tree["code"]}
            return cls(str(tree["enclave"]), objects, code)
        except (ValueError, KeyError, TypeError, WireError) as exc:
            raise InputError(f"not an enclave state bundle: {exc}") from None

    def seal(self, key: bytes, nonce: bytes) -> bytes:
        return bytes(nacl.secret.SecretBox(key).encrypt(self.to_bytes(), nonce))

    @classmethod
    def unseal(cls, key: bytes, sealed: bytes) -> EnclaveStore:
        try:
            plain = nacl.secret.SecretBox(key).decrypt(sealed)
        except Exception as exc:  # nacl raises CryptoError or ValueError on a wrong key or bad bytes
            raise InputError(f"cannot open the enclave state with this key ({exc}); check the key file matches the enclave") from None
        return cls.from_bytes(plain)


def _objects_wire(objects: dict[bytes, StoredObject]) -> list[Any]:
    return [[oid, to_wire(objects[oid])] for oid in sorted(objects)]


def _code_wire(code: dict[bytes, str]) -> list[Any]:
    return [[cid, code[cid]] for cid in sorted(code)]
