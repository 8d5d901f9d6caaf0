"""Classes the runtime implements itself: the enclave roster (MEM-1..MEM-3),
mailboxes (MBX-1..MBX-4) and the registry (REG-1).

Their methods are native because their rules are the ledger's own: a roster
change must be judged by exactly the function the auditor applies to the
published change (``sagachain.core.rules.membership``), which a SagaPython
class could only copy. Their records still sit in the class registry like any
other, so the CMI resolves and authorizes calls to them the usual way; every
method is open to any sender (``any``) because who may do what is MEM-2's
decision, made here with the sending account and the roster as it stands.

A roster method's arguments are plain values a script can write: node ids and
keys as bytes, seats as a list of shard ids, key material as the encoded
``Rekey`` (``sagachain.core.epoch_keys``) the acting node built off chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sagachain.core.encoding import ObjRef
from sagachain.core.objects import StoredObject, node_id_for
from sagachain.core.roster import (
    BURN_ON_READ,
    KINDS,
    MEMBER,
    PENDING,
    BLOCKED,
    ROSTER_CLASS_ID,
    EpochRecord,
    RosterEntry,
    entry_id,
    entry_of,
    entry_to_object,
    epoch_id,
    epoch_to_object,
    head_of,
    head_to_object,
)
from sagachain.core.rules.membership import (
    ACCEPT,
    APPLY,
    APPROVE,
    BLOCK_NODE,
    DECLINE,
    GRANT,
    INVITE,
    JOIN,
    REMOVE,
    REVOKE,
    ROTATE,
    UNBLOCK,
    mem_2_problem,
    membership_change,
    read_transition,
)
from sagachain.core.mailbox import (
    ENCLAVE_ENTRY_CLASS_ID,
    ENVELOPE_CLASS_ID,
    IDENTITY_RECORD_CLASS_ID,
    MAILBOX_CLASS_ID,
    REGISTRY_CLASS_ID,
    Device,
    RegistryEnclave,
    EnvelopeRecord,
    IdentityRecord,
    MailboxHead,
    enclave_record_id,
    envelope_id,
    envelope_of,
    head_of_mailbox,
    identity_record_id,
    read,
    to_object,
)
from sagachain.core.rules.mailbox import envelope_problem, purge_allowed
from sagachain.core.system import MAILBOX_METHODS, REGISTRY_METHODS, ROSTER_METHODS
from sagachain.errors import ExecutionError, ScriptFailure

@dataclass
class NativeCall:
    """What a native method may do: read and write objects through the interpreter (which
    meters the bytes), know who sent the message, and check signatures."""

    load: Callable[[bytes], StoredObject | None]
    store: Callable[[bytes, StoredObject | None, str], None]
    sender: bytes  # the account that sent the message
    signer: bytes  # the transaction's signer
    time: int  # the block's time
    written: Callable[[bytes], bool]  # whether this transaction already wrote the object
    verify: Callable[[bytes, bytes, bytes], bool]
    epoch_problem: Callable[[str, bytes, tuple[str, bytes, bytes]], str | None]
    log: Callable[[Any], None]


def call_native(call: NativeCall, class_id: bytes, target: bytes, obj: StoredObject, method: str, args: list[Any]) -> Any:
    if class_id == ROSTER_CLASS_ID:
        return _roster_call(call, target, obj, method, args)
    if class_id == MAILBOX_CLASS_ID:
        return _mailbox_call(call, target, obj, method, args)
    if class_id == REGISTRY_CLASS_ID:
        return _registry_call(call, target, method, args)
    raise ExecutionError("CMI-1", f"class {class_id.hex()[:12]} has no native method {method!r}")


# -- the roster -----------------------------------------------------------------------


def _bytes(value: Any, name: str, size: int | None = None) -> bytes:
    if isinstance(value, ObjRef):
        value = value.id
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        raise ScriptFailure(f"argument {name} must be {size or 'some'} bytes, got {type(value).__name__}")
    return value


def _shards(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value) or len(set(value)) != len(value):
        raise ScriptFailure("argument shards must be a list of distinct shard ids")
    return tuple(sorted(value))


def _roster_call(call: NativeCall, target: bytes, obj: StoredObject, method: str, args: list[Any]) -> None:
    head = head_of(obj)
    if head is None:
        raise ExecutionError("MEM-2", f"roster account {target.hex()[:12]} holds no readable roster head")
    if call.written(target):
        raise ExecutionError("MEM-2", "one roster change per transaction: send the next change in another transaction")
    params = dict(zip(ROSTER_METHODS[method], args))
    enclave = head.enclave
    by = _bytes(params["by"], "by", 32) if "by" in params else None
    rekey = _bytes(params["rekey"], "rekey") if "rekey" in params else b""
    if method in (APPLY, JOIN, INVITE):
        key = _bytes(params["key"], "key", 32)
        node = node_id_for(key)
        before = entry_of(call.load(entry_id(enclave, node)))
        account = _bytes(params["account"], "account", 32) if method == INVITE else call.sender
        after: RosterEntry | None = RosterEntry(
            node=node,
            key=key,
            account=account,
            state=MEMBER if method == JOIN else PENDING,
            traits=(),
            shards=_shards(params["shards"]),
            proof=_bytes(params["proof"], "proof"),
            invite=rekey if method == INVITE else b"",
        )
        if before is not None:
            raise ExecutionError("MEM-2", f"node {node.hex()[:12]} is already on the roster of {enclave} as {before.state}")
        if method == INVITE:
            problem = call.epoch_problem(enclave, rekey, ("add", node, key)) if rekey else "no key material given"
            if problem is not None:
                raise ExecutionError("MEM-2", f"an invite escrows the key material of the epoch that adds the invitee: {problem}")
    else:
        node = _bytes(params["node"], "node", 32)
        before = entry_of(call.load(entry_id(enclave, node)))
        if before is None:
            raise ExecutionError("MEM-2", f"node {node.hex()[:12]} has no entry on the roster of {enclave}")
        after = _after(method, before, params)
        if method == ACCEPT:
            rekey = before.invite
    # Self operations (and a node removing itself) act as the node; the others as the admin ``by``.
    actor_id = node if by is None else by
    actor = before if actor_id == node else entry_of(call.load(entry_id(enclave, actor_id)))
    transition = read_transition(before, after)  # judged as the auditor reads the published change
    if isinstance(transition, str) or transition.op != method:
        state = before.state if before is not None else "no entry"
        reading = transition if isinstance(transition, str) else f"that change is {transition.op}, not {method}; call {transition.op}"
        raise ExecutionError("MEM-2", f"{method} of node {node.hex()[:12]} ({state}): {reading}")
    problem = mem_2_problem(transition, head=head, sender=call.sender, actor=actor, verify=call.verify)
    if problem is not None:
        raise ExecutionError("MEM-2", problem)
    change = membership_change(transition)
    epoch = head.epoch + (1 if change else 0)
    if change and not rekey:
        raise ExecutionError("MEM-3", f"{method} starts epoch {epoch}: pass the key material that starts it (rekey)")
    if not change and rekey and method != INVITE:
        raise ExecutionError("MEM-3", f"{method} changes no member; it takes no key material")
    if change:
        problem = call.epoch_problem(enclave, rekey, change)
        if problem is not None:
            raise ExecutionError("MEM-3", f"{method} of {node.hex()[:12]}: {problem}; build the key material from the roster's current schedule")
    version = head.version + 1
    if after is not None:
        after = replace(after, since=version)
    call.store(target, head_to_object(enclave, replace(head, epoch=epoch, version=version, actor=actor_id), int(obj.fields.get("balance", 0))), "the roster head")
    call.store(entry_id(enclave, node), entry_to_object(enclave, after) if after is not None else None, "a roster entry")
    if change:
        call.store(epoch_id(enclave, epoch), epoch_to_object(enclave, EpochRecord(epoch=epoch, rekey=rekey)), "epoch key material")
    call.log(["roster", enclave, method, node, epoch])


def _after(method: str, before: RosterEntry, params: dict[str, Any]) -> RosterEntry | None:
    if method in (ACCEPT, APPROVE):
        return replace(before, state=MEMBER, invite=b"")
    if method in (DECLINE, REMOVE, UNBLOCK):
        return None
    if method == BLOCK_NODE:
        return replace(before, state=BLOCKED, traits=(), invite=b"")
    if method in (GRANT, REVOKE):
        trait = params["trait"]
        if not isinstance(trait, str) or not trait:
            raise ScriptFailure("argument trait must be a non-empty string")
        traits = set(before.traits) | {trait} if method == GRANT else set(before.traits) - {trait}
        if set(traits) == set(before.traits):
            raise ExecutionError("MEM-2", f"node {before.node.hex()[:12]} {'already has' if method == GRANT else 'does not have'} trait {trait!r}")
        return before.with_traits(traits)
    assert method == ROTATE
    key = _bytes(params["key"], "key", 32)
    return replace(before, key=key, proof=_bytes(params["proof"], "proof"), previous_keys=(*before.previous_keys, before.key))


# -- mailboxes ------------------------------------------------------------------------


def _mailbox_call(call: NativeCall, target: bytes, obj: StoredObject, method: str, args: list[Any]) -> Any:
    head = head_of_mailbox(obj)
    if head is None:
        raise ExecutionError("MBX-1", f"account {target.hex()[:12]} holds no readable mailbox head")
    params = dict(zip(MAILBOX_METHODS[method], args))
    balance = int(obj.fields.get("balance", 0))
    if method in ("add_device", "remove_device"):
        if call.signer != head.manager:
            raise ExecutionError("MBX-2", f"only the mailbox's manager {head.manager.hex()[:12]} registers and drops devices")
        device = _bytes(params["device"], "device", 32)
        others = tuple(d for d in head.devices if d.id != device)
        if method == "add_device":
            if len(others) != len(head.devices):
                raise ExecutionError("MBX-2", f"device {device.hex()[:12]} is already registered")
            added = Device(id=device, key=_bytes(params["key"], "key", 32), account=_bytes(params["account"], "account", 32))
            devices = tuple(sorted((*others, added), key=lambda d: d.id))
        else:
            if len(others) == len(head.devices):
                raise ExecutionError("MBX-2", f"device {device.hex()[:12]} is not registered")
            devices = others
        call.store(target, to_object(MAILBOX_CLASS_ID, target, replace(head, devices=devices), balance), "the mailbox head")
        call.log(["device", target, method, device])
        return None
    if method == "send":
        sealed = _bytes(params["sealed"], "sealed")
        seq = head.next_seq
        after = EnvelopeRecord(
            seq=seq, sender=call.sender, sealed=sealed, size=len(sealed), time=call.time, targets=tuple(sorted(d.id for d in head.devices)), acked=()
        )
        _judge_envelope(call, head, None, after, range(seq, seq + 1))
        call.store(envelope_id(target, seq), to_object(ENVELOPE_CLASS_ID, target, after), "an envelope")
        call.store(target, to_object(MAILBOX_CLASS_ID, target, replace(head, next_seq=seq + 1), balance), "the mailbox head")
        call.log(["envelope", target, seq, call.sender, len(sealed)])  # MBX-4: what subscribers are told
        return seq
    seq = params["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ScriptFailure("argument seq must be an int")
    before = envelope_of(call.load(envelope_id(target, seq)))
    if before is None:
        raise ExecutionError("MBX-4", f"mailbox {target.hex()[:12]} has no envelope number {seq}")
    if before.purged:
        raise ExecutionError("MBX-2", f"envelope {seq} was already purged ({before.purged})")
    if method == "ack":
        device = _bytes(params["device"], "device", 32)
        if device in before.acked:
            raise ExecutionError("MBX-2", f"device {device.hex()[:12]} already acknowledged envelope {seq}")
        after = replace(before, acked=tuple(sorted((*before.acked, device))))
        if head.retention == BURN_ON_READ and purge_allowed(head, before, after.acked, call.time) is None:
            after = replace(after, sealed=b"", purged=head.retention, purged_at=call.time)
    else:
        refusal = purge_allowed(head, before, before.acked, call.time)
        if refusal is not None:
            raise ExecutionError("MBX-2", f"envelope {seq} may not be purged yet: {refusal}")
        after = replace(before, sealed=b"", purged=head.retention, purged_at=call.time)
    _judge_envelope(call, head, before, after, range(head.next_seq, head.next_seq))
    call.store(envelope_id(target, seq), to_object(ENVELOPE_CLASS_ID, target, after), "an envelope")
    call.log(["purged" if after.purged else "acked", target, seq])
    return None


def _judge_envelope(call: NativeCall, head: MailboxHead, before: EnvelopeRecord | None, after: EnvelopeRecord, seqs: range) -> None:
    problem = envelope_problem(head, before, after, sender=call.sender, signer=call.signer, time=call.time, seq_range=seqs)
    if problem is not None:
        raise ExecutionError(*problem)


# -- the registry ---------------------------------------------------------------------


def _registry_call(call: NativeCall, target: bytes, method: str, args: list[Any]) -> None:
    params = dict(zip(REGISTRY_METHODS[method], args))
    if method == "register_identity":
        shared = params["shared"]
        if not isinstance(shared, list) or not all(isinstance(e, str) for e in shared):
            raise ScriptFailure("argument shared must be a list of enclave ids")
        for name in ("personal", "dm"):
            if not isinstance(params[name], str):
                raise ScriptFailure(f"argument {name} must be an enclave id (a string, empty for none)")
        record = IdentityRecord(
            account=call.signer, personal=params["personal"], dm=params["dm"], shared=tuple(sorted(set(shared))), mailbox=_bytes(params["mailbox"], "mailbox", 32)
        )
        call.store(identity_record_id(call.signer), to_object(IDENTITY_RECORD_CLASS_ID, target, record), "an identity record")
        call.log(["registry", "identity", call.signer])
        return
    enclave, kind = params["enclave"], params["kind"]
    if not isinstance(enclave, str) or not isinstance(kind, str):
        raise ScriptFailure("arguments enclave and kind must be strings")
    if kind not in KINDS:
        raise ExecutionError("REG-1", f"kind {kind!r} is not one of {', '.join(KINDS)}")
    existing = read(RegistryEnclave, ENCLAVE_ENTRY_CLASS_ID, call.load(enclave_record_id(enclave)))
    if existing is not None and existing.registrant != call.signer:
        raise ExecutionError("REG-1", f"enclave {enclave} was registered by {existing.registrant.hex()[:12]}; only that account updates it")
    record = RegistryEnclave(
        enclave=enclave, kind=kind, roster=_bytes(params["roster"], "roster", 32), mailbox=_bytes(params["mailbox"], "mailbox", 32), registrant=call.signer
    )
    call.store(enclave_record_id(enclave), to_object(ENCLAVE_ENTRY_CLASS_ID, target, record), "an enclave record")
    call.log(["registry", "enclave", enclave])
