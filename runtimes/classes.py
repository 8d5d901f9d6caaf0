"""Class and runtime records: what a class publishes, built from its source (CLS-1, RT-1).

A class's method table is derived from its code, never declared beside it, so
the public table of a private class is exactly what its hidden code accepts
(CLS-1), and an auditor who recompiles an open class gets the same table.
Methods default to ``owner`` permission: a method is callable only by its own
account unless the class's ALLOW table opens it up (CMI-1).
"""

from __future__ import annotations

from sagachain.core.objects import (
    ACCOUNT_CLASS_ID,
    ACCOUNT_CLASS_NAME,
    ALLOW_ANY,
    ALLOW_OWNER,
    ALLOW_SIGNER,
    PUBLIC_RUNTIME_ID,
    PUBLIC_RUNTIME_NAME,
    ClassRecord,
    MethodSig,
    RuntimeRecord,
    class_id_for,
    code_hash,
    enclave_account_class_name,
    native_code_hash,
    runtime_id_for,
)
from sagachain.errors import ScriptError
from runtimes.subset import allow_table, check_class_source

OBJECT_ROOT = "Object"  # the base a class of plain (non-account) objects names; it has no record
PRIVATE_RUNTIME_PREFIX = "sagapython-private/"

# The native methods of ClassAccount, run by the runtime itself (no code).
NATIVE_METHODS = (
    MethodSig(name="pay", params=("to", "amount"), allow=ALLOW_SIGNER),
    MethodSig(name="balance", params=(), allow=ALLOW_ANY),
)


def public_runtime() -> RuntimeRecord:
    """The open SagaPython runtime every node runs (RT-3)."""
    return RuntimeRecord(id=PUBLIC_RUNTIME_ID, name=PUBLIC_RUNTIME_NAME, private=False, enclave=None)


def private_runtime(enclave: str) -> RuntimeRecord:
    """An enclave's private runtime: same language, loaded only by that enclave's nodes (RT-2)."""
    name = PRIVATE_RUNTIME_PREFIX + enclave
    return RuntimeRecord(id=runtime_id_for(name), name=name, private=True, enclave=enclave)


def builtin_account_class() -> ClassRecord:
    """``ClassAccount`` (OBJ-3): the root of every account class, with native pay and balance."""
    return ClassRecord(
        id=ACCOUNT_CLASS_ID,
        name=ACCOUNT_CLASS_NAME,
        base=None,
        runtime=PUBLIC_RUNTIME_ID,
        methods=NATIVE_METHODS,
        code=None,
        code_hash=native_code_hash(ACCOUNT_CLASS_NAME),
        private=False,
        enclave=None,
        owner=None,
    )


def enclave_account_class(enclave: str, runtime: bytes) -> ClassRecord:
    """The enclave-bound subclass of ClassAccount every account of ``enclave`` derives from (OBJ-3)."""
    name = enclave_account_class_name(enclave)
    return ClassRecord(
        id=class_id_for(name),
        name=name,
        base=ACCOUNT_CLASS_ID,
        runtime=runtime,
        methods=(),
        code=None,
        code_hash=native_code_hash(name),
        private=True,
        enclave=enclave,
        owner=None,
    )


def compile_class(
    *,
    name: str,
    code: str,
    base: bytes | None,
    runtime: bytes,
    private: bool,
    enclave: str | None,
    owner: bytes | None,
) -> ClassRecord:
    """Check ``code`` and derive the class record it publishes.

    A private class publishes its method table and the hash of its code; the
    code itself stays with the enclave (CLS-1). Raises ScriptError (TX-1) when
    the code is outside the subset or does not define ``name`` on ``base``.
    """
    tree = check_class_source(code)
    if tree.name != name:
        raise ScriptError(f"the code defines class {tree.name!r}, but it is registered as {name!r}", line=tree.lineno, construct="class name")
    base_name = tree.bases[0].id  # type: ignore[attr-defined]
    if (base is None and base_name != OBJECT_ROOT) or (base is not None and class_id_for(base_name) != base):
        raise ScriptError(f"class {name!r} names base {base_name!r}, which is not the registered base", line=tree.lineno, construct="class base")
    allow = allow_table(tree)
    methods = []
    for item in tree.body:
        if hasattr(item, "args") and hasattr(item, "name"):
            params = tuple(a.arg for a in item.args.args[1:])  # type: ignore[attr-defined]
            methods.append(MethodSig(name=item.name, params=params, allow=allow.get(item.name, ALLOW_OWNER)))  # type: ignore[attr-defined]
    unknown = sorted(set(allow) - {m.name for m in methods})
    if unknown:
        raise ScriptError(f"ALLOW names methods the class does not define: {', '.join(unknown)}", line=tree.lineno, construct="ALLOW")
    return ClassRecord(
        id=class_id_for(name),
        name=name,
        base=base,
        runtime=runtime,
        methods=tuple(sorted(methods, key=lambda m: m.name)),
        code=None if private else code,
        code_hash=code_hash(code),
        private=private,
        enclave=enclave,
        owner=owner,
    )
