"""The classes the runtime implements itself, as the genesis registers them (CLS-1).

Their method tables are data: the runtime (``runtimes.system_classes``)
dispatches by them and the class rule accepts a native class only when its
record is exactly the one built here.
"""

from __future__ import annotations

from sagachain.core.mailbox import (
    ENCLAVE_ENTRY_CLASS_ID,
    ENCLAVE_ENTRY_CLASS_NAME,
    ENVELOPE_CLASS_ID,
    ENVELOPE_CLASS_NAME,
    IDENTITY_RECORD_CLASS_ID,
    IDENTITY_RECORD_CLASS_NAME,
    MAILBOX_CLASS_ID,
    MAILBOX_CLASS_NAME,
    REGISTRY_CLASS_ID,
    REGISTRY_CLASS_NAME,
)
from sagachain.core.objects import ACCOUNT_CLASS_ID, ALLOW_ANY, PUBLIC_RUNTIME_ID, ClassRecord, MethodSig, native_code_hash
from sagachain.core.roster import (
    ROSTER_CLASS_ID,
    ROSTER_CLASS_NAME,
    ROSTER_ENTRY_CLASS_ID,
    ROSTER_ENTRY_CLASS_NAME,
    ROSTER_EPOCH_CLASS_ID,
    ROSTER_EPOCH_CLASS_NAME,
)

# Roster operations (MEM-2); the names are the ones ``rules.membership`` reads transitions as.
ROSTER_METHODS: dict[str, tuple[str, ...]] = {
    "apply": ("key", "proof", "shards"),
    "invite": ("by", "key", "proof", "account", "shards", "rekey"),
    "accept": ("node",),
    "decline": ("node",),
    "approve": ("by", "node", "rekey"),
    "join": ("key", "proof", "shards", "rekey"),
    "remove": ("by", "node", "rekey"),
    "block": ("by", "node", "rekey"),
    "unblock": ("by", "node"),
    "grant": ("by", "node", "trait"),
    "revoke": ("by", "node", "trait"),
    "rotate": ("node", "key", "proof", "rekey"),
}


def _native_class(name: str, class_id: bytes, base: bytes | None, methods: dict[str, tuple[str, ...]]) -> ClassRecord:
    return ClassRecord(
        id=class_id,
        name=name,
        base=base,
        runtime=PUBLIC_RUNTIME_ID,
        methods=tuple(MethodSig(name=n, params=p, allow=ALLOW_ANY) for n, p in sorted(methods.items())),
        code=None,
        code_hash=native_code_hash(name),
        private=False,
        enclave=None,
        owner=None,
    )


def roster_classes() -> list[ClassRecord]:
    """The roster account class and the plain classes of its entries and epoch records."""
    return [
        _native_class(ROSTER_CLASS_NAME, ROSTER_CLASS_ID, ACCOUNT_CLASS_ID, ROSTER_METHODS),
        _native_class(ROSTER_ENTRY_CLASS_NAME, ROSTER_ENTRY_CLASS_ID, None, {}),
        _native_class(ROSTER_EPOCH_CLASS_NAME, ROSTER_EPOCH_CLASS_ID, None, {}),
    ]


MAILBOX_METHODS: dict[str, tuple[str, ...]] = {
    "send": ("sealed",),
    "ack": ("seq", "device"),
    "purge": ("seq",),
    "add_device": ("device", "key", "account"),
    "remove_device": ("device",),
}
REGISTRY_METHODS: dict[str, tuple[str, ...]] = {
    "register_identity": ("personal", "dm", "shared", "mailbox"),
    "register_enclave": ("enclave", "kind", "roster", "mailbox"),
}


def mailbox_classes() -> list[ClassRecord]:
    """The mailbox account class and the plain class of its envelopes."""
    return [
        _native_class(MAILBOX_CLASS_NAME, MAILBOX_CLASS_ID, ACCOUNT_CLASS_ID, MAILBOX_METHODS),
        _native_class(ENVELOPE_CLASS_NAME, ENVELOPE_CLASS_ID, None, {}),
    ]


def registry_classes() -> list[ClassRecord]:
    """The registry account class and the plain classes of its records."""
    return [
        _native_class(REGISTRY_CLASS_NAME, REGISTRY_CLASS_ID, ACCOUNT_CLASS_ID, REGISTRY_METHODS),
        _native_class(IDENTITY_RECORD_CLASS_NAME, IDENTITY_RECORD_CLASS_ID, None, {}),
        _native_class(ENCLAVE_ENTRY_CLASS_NAME, ENCLAVE_ENTRY_CLASS_ID, None, {}),
    ]


def system_classes() -> list[ClassRecord]:
    """Every class the runtime implements beyond ClassAccount, for a genesis to register."""
    return [*roster_classes(), *mailbox_classes(), *registry_classes()]


SYSTEM_CLASSES = {c.id: c for c in system_classes()}
NATIVE_CLASSES = frozenset({ROSTER_CLASS_ID, MAILBOX_CLASS_ID, REGISTRY_CLASS_ID})




def call_script(alias: str, method: str, args: list[bytes | str | int | list[str]]) -> str:
    """The one-line SagaPython script that calls ``method`` of the system account the
    transaction declares as ``alias``, with literal arguments (bytes, str, int, list of str)."""
    tables = {**ROSTER_METHODS, **MAILBOX_METHODS, **REGISTRY_METHODS}
    if method not in tables or len(args) != len(tables[method]):
        raise ValueError(f"{method} takes ({', '.join(tables.get(method, ()))}), got {len(args)} arguments")
    for value in args:
        if not isinstance(value, (bytes, str, int, list)) or isinstance(value, bool):
            raise ValueError(f"argument {value!r} of {method} is not bytes, str, int or a list of str")
    return f"{alias}.{method}({', '.join(repr(a) for a in args)})\n"
