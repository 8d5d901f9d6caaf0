"""The CMI: the dispatcher every method call goes through (CMI-1..CMI-4, RT-1..RT-3).

A message ``target.method(args)`` is resolved to the target's class, the class
in its inheritance chain that defines the method, that class's runtime and its
code. Before anything runs the dispatcher checks, in this order, and refuses
with the rule's id:

1. CMI-4: a message from one enclave's account to another enclave's object is
   refused; enclaves talk through public mailboxes (MBX);
2. CMI-1: the target's account is one the transaction declared, and the
   executing shard owns it (the L2L negotiation put it there);
3. CMI-4, CMI-2: an enclave object (enclave account, or a class bound to an
   enclave) runs only on a shard of its own enclave, on a node of that enclave;
4. CMI-1: the class (or a base) defines the method, and the method's
   permission admits the sender: ``any``, ``owner`` (the sending account owns
   the target) or ``signer`` (the transaction's signer owns the target);
5. RT-1..RT-3: the class's runtime is registered; a private runtime runs only
   code of its own enclave, only on that enclave's nodes, and the node holds
   the private code.

CMI-3 (enclave and open accounts messaging each other) needs no check of its
own: it is what passes all of the above on an enclave shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagachain.core.objects import ClassRecord, MethodSig, StoredObject, ALLOW_ANY, ALLOW_OWNER, ALLOW_SIGNER
from sagachain.errors import ExecutionError
from runtimes.context import ExecutionContext


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A resolved message: which code runs, for which account."""

    target: bytes
    account: bytes
    defining: ClassRecord
    method: MethodSig
    code: str | None  # None: a native method of ClassAccount
    enclave: str | None


def class_chain(ctx: ExecutionContext, class_id: bytes) -> list[ClassRecord]:
    """The class and its bases, most derived first (CMI-1 resolution order)."""
    chain: list[ClassRecord] = []
    current: bytes | None = class_id
    while current is not None:
        cls = ctx.classes.get(current)
        if cls is None:
            raise ExecutionError("CMI-1", f"class {current.hex()[:12]} is not registered; deploy it first")
        if cls in chain:
            raise ExecutionError("CMI-1", f"class {cls.name} inherits from itself")
        chain.append(cls)
        current = cls.base
    return chain


def object_enclave(ctx: ExecutionContext, obj: StoredObject) -> str | None:
    """The enclave an object belongs to: its account's, or its class chain's (CLS-3 permissive)."""
    enclave = ctx.account_enclave(obj.owner)
    if enclave is not None:
        return enclave
    return next((c.enclave for c in class_chain(ctx, obj.class_id) if c.enclave is not None), None)


def check_placement(ctx: ExecutionContext, account: bytes, declared: frozenset[bytes], enclave: str | None, what: str) -> None:
    """Steps 1 and 2: the account is declared and owned here; enclave objects stay in their enclave."""
    if account not in declared:
        raise ExecutionError("CMI-1", f"{what}: its account {account.hex()[:12]} is not declared by the transaction; list it in the accounts")
    if not ctx.owns(account):
        raise ExecutionError("CMI-1", f"{what}: shard {ctx.shard} does not own account {account.hex()[:12]}")
    if enclave is None:
        return
    if ctx.shard_enclave is not None and ctx.shard_enclave != enclave:
        raise ExecutionError("CMI-4", f"{what}: belongs to enclave {enclave}, not to this shard's enclave {ctx.shard_enclave}")
    if ctx.shard_enclave is None or enclave not in ctx.node_enclaves:
        raise ExecutionError("CMI-2", f"{what}: belongs to enclave {enclave} and runs only on its shards and nodes")


def dispatch(
    ctx: ExecutionContext,
    *,
    target: bytes,
    obj: StoredObject,
    method: str,
    sender: bytes,
    signer: bytes,
    declared: frozenset[bytes],
) -> Dispatch:
    """Resolve and authorize ``sender``'s message ``method`` to object ``target``."""
    what = f"message {method!r} to {target.hex()[:12]}"
    enclave = object_enclave(ctx, obj)
    sender_enclave = ctx.account_enclave(sender)
    if sender_enclave is not None and enclave is not None and sender_enclave != enclave:
        raise ExecutionError("CMI-4", f"{what}: from enclave {sender_enclave} to enclave {enclave}; use a public mailbox")
    check_placement(ctx, obj.owner, declared, enclave, what)
    for cls in class_chain(ctx, obj.class_id):
        sig = cls.method(method)
        if sig is not None:
            break
    else:
        raise ExecutionError("CMI-1", f"{what}: class {ctx.classes[obj.class_id].name} has no method {method!r}")
    _check_permission(sig, what, account=obj.owner, sender=sender, signer=signer)
    code = _code_for(ctx, cls, enclave, what)
    return Dispatch(target=target, account=obj.owner, defining=cls, method=sig, code=code, enclave=enclave)


def _check_permission(sig: MethodSig, what: str, *, account: bytes, sender: bytes, signer: bytes) -> None:
    if sig.allow == ALLOW_ANY:
        return
    if sig.allow == ALLOW_OWNER and sender == account:
        return
    if sig.allow == ALLOW_SIGNER and signer == account:
        return
    if sig.allow not in (ALLOW_OWNER, ALLOW_SIGNER):
        raise ExecutionError("CMI-1", f"{what}: unknown permission {sig.allow!r}")
    who = "the sending account" if sig.allow == ALLOW_OWNER else "the transaction's signer"
    raise ExecutionError("CMI-1", f"{what}: refused, the method allows only {who} to be the target's account ({sig.allow})")


def _code_for(ctx: ExecutionContext, cls: ClassRecord, enclave: str | None, what: str) -> str | None:
    runtime = ctx.runtimes.get(cls.runtime)
    if runtime is None:
        raise ExecutionError("RT-1", f"{what}: class {cls.name} names runtime {cls.runtime.hex()[:12]}, which is not registered")
    if runtime.private:
        if runtime.enclave != cls.enclave or runtime.enclave != enclave:
            raise ExecutionError("RT-2", f"{what}: private runtime {runtime.name} runs only code of enclave {runtime.enclave}")
        if runtime.enclave not in ctx.node_enclaves:
            raise ExecutionError("RT-2", f"{what}: private runtime {runtime.name} is loaded only by nodes of enclave {runtime.enclave}")
    if not cls.private:
        return cls.code
    code = ctx.private_code.get(cls.id)
    if code is None and cls.methods:
        raise ExecutionError("RT-3", f"{what}: this node does not hold the private code of class {cls.name}; it may not serve enclave {enclave}")
    return code
