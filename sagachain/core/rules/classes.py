"""Classes and runtimes (CLS-1..CLS-3, RT-1..RT-3), checked on the genesis and
on every class deployed later.

The method table of every class is public; the code of an open class is public
and must hash to its code hash; a private class shows only the hash, belongs to
an enclave account and runs in its enclave's private runtime (RT-2). CLS-3
decides what an open class with a private base is, per the chain's policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sagachain.core.block import Block, DeployEntry
from sagachain.core.genesis import CLS3_STRICT
from sagachain.core.ledger import ChainState
from sagachain.core.objects import (
    ACCOUNT_CLASS_ID,
    ACCOUNT_CLASS_NAME,
    PUBLIC_RUNTIME_ID,
    ClassRecord,
    class_id_for,
    code_hash,
    enclave_account_class_name,
    native_code_hash,
)
from sagachain.core.system import SYSTEM_CLASSES
from sagachain.core.rules.catalog import ENTRY, GENESIS, Violation, describe, rule
from sagachain.core.rules.tools import Tools

describe("RT-1", "every class names a registered runtime (checked with the classes, CLS-1 and CLS-3)")


def class_problems(state: ChainState, cls: ClassRecord, tools: Tools) -> Iterator[tuple[str, str]]:
    """Every (rule, reason) a class record breaks, given the classes known before it."""
    if cls.code is None and cls.code_hash == native_code_hash(cls.name):
        yield from _native_problems(state, cls)
        return
    runtime = state.runtimes.get(cls.runtime)
    if runtime is None:
        yield "RT-1", f"class {cls.name} names runtime {cls.runtime.hex()[:12]}, which is not registered"
    if cls.base is not None and cls.base not in state.classes:
        yield "CLS-1", f"class {cls.name} names base {cls.base.hex()[:12]}, which does not exist"
    if cls.private:
        yield from _private_problems(state, cls, runtime)
    else:
        yield from _open_problems(state, cls, runtime, tools)


def _native_problems(state: ChainState, cls: ClassRecord) -> Iterator[tuple[str, str]]:
    """A class claiming native code must be ClassAccount or the account root of a known enclave."""
    if cls.id == ACCOUNT_CLASS_ID and cls.name == ACCOUNT_CLASS_NAME:
        if cls.base is not None or cls.private or cls.enclave is not None or cls.runtime != PUBLIC_RUNTIME_ID:
            yield "OBJ-3", f"{ACCOUNT_CLASS_NAME} must be the open root class in the public runtime"
        return
    if cls.id in SYSTEM_CLASSES:
        if cls != SYSTEM_CLASSES[cls.id]:
            yield "CLS-1", f"class {cls.name} claims native code but its record is not the runtime's own {cls.name}"
        return
    enclave = cls.enclave
    record = state.enclaves.get(enclave) if enclave else None
    runtime = state.runtimes.get(cls.runtime)
    if record is None or cls.name != enclave_account_class_name(enclave or "") or cls.id != class_id_for(cls.name):
        yield "CLS-1", f"class {cls.name} claims native code but is neither {ACCOUNT_CLASS_NAME} nor an enclave's account root"
        return
    if cls.base != ACCOUNT_CLASS_ID or not cls.private or cls.methods:
        yield "OBJ-3", f"{cls.name} must be a private subclass of {ACCOUNT_CLASS_NAME} without methods of its own"
    if runtime is None or not runtime.private or runtime.enclave != enclave:
        yield "RT-2", f"{cls.name} must run in the private runtime of {enclave}"


def _private_problems(state: ChainState, cls: ClassRecord, runtime: Any) -> Iterator[tuple[str, str]]:
    if cls.code is not None:
        yield "CLS-1", f"private class {cls.name} publishes its code; only its hash may be public"
    if cls.enclave not in state.enclaves:
        yield "CLS-1", f"private class {cls.name} names no known enclave ({cls.enclave!r})"
    owner = state.accounts.get(cls.owner) if cls.owner else None
    if owner is None or owner.enclave != cls.enclave:
        yield "CLS-1", f"private class {cls.name} must be owned by an account of enclave {cls.enclave}"
    if runtime is not None and (not runtime.private or runtime.enclave != cls.enclave):
        yield "RT-2", f"private class {cls.name} must run in the private runtime of {cls.enclave}, not {runtime.name}"


def _open_problems(state: ChainState, cls: ClassRecord, runtime: Any, tools: Tools) -> Iterator[tuple[str, str]]:
    if cls.code is None or code_hash(cls.code) != cls.code_hash:
        yield "CLS-1", f"open class {cls.name} must publish code that hashes to its code hash"
    elif tools.check_class is not None:
        problem = tools.check_class(cls)
        if problem is not None:
            yield "CLS-1", f"open class {cls.name}: {problem}"
    if runtime is not None and runtime.private:
        yield "RT-2", f"open class {cls.name} names private runtime {runtime.name}; a private runtime runs only private code"
    base_enclave = state.class_enclave(cls.base) if cls.base is not None else None
    if base_enclave is None:
        return
    if state.params.cls3_policy == CLS3_STRICT:
        yield "CLS-3", f"open class {cls.name} inherits from a class bound to enclave {base_enclave}; the strict policy forbids it"
    elif cls.enclave != base_enclave:
        yield "CLS-3", f"open class {cls.name} has a private base of {base_enclave} and must be marked bound to it"


@rule("CLS-1", "classes: public method table; open code matches its hash; private code off chain", GENESIS)
def check_genesis_classes(state: ChainState, tools: Tools) -> Iterator[Violation]:
    for problem_rule, reason in _genesis_class_problems(state, tools):
        yield Violation(problem_rule, reason)


def _genesis_class_problems(state: ChainState, tools: Tools) -> Iterator[tuple[str, str]]:
    known = dict(state.classes)
    state.classes.clear()
    try:
        for cls in known.values():
            yield from class_problems(state, cls, tools)
            state.classes[cls.id] = cls
    finally:
        state.classes.update(known)


@rule("CLS-3", "a deployed class obeys CLS-1, RT-1, RT-2 and the CLS-3 inheritance policy", ENTRY, (DeployEntry,))
def check_deploy(state: ChainState, block: Block, index: int, entry: Any, tools: Tools) -> Iterator[Violation]:
    cls = entry.cls
    deployer = state.accounts.get(entry.deployer)
    if deployer is None or not tools.verify(deployer.public_key, entry.signed_bytes(), entry.signature):
        yield Violation("CLS-1", f"deploy of {cls.name} is not signed by a known deployer", block.shard, block.height, index)
    if cls.id in state.classes:
        yield Violation("CLS-1", f"class id of {cls.name} is already taken", block.shard, block.height, index)
    bound = cls.enclave if cls.enclave is not None else state.class_enclave(cls.base) if cls.base else None
    if bound is not None and state.shard_enclave(block.shard) != bound:
        yield Violation("CMI-2", f"class {cls.name} bound to {bound} deployed on {block.shard}", block.shard, block.height, index)
    for problem_rule, reason in class_problems(state, cls, tools):
        yield Violation(problem_rule, reason, block.shard, block.height, index)


@rule("RT-3", "every node on an enclave shard runs all public runtimes and its enclave's private ones", GENESIS)
def check_rt_3_enclave_nodes(state: ChainState, tools: Tools) -> Iterator[Violation]:
    public = {r.id for r in state.runtimes.values() if not r.private}
    for shard in state.shards.values():
        if shard.enclave is None:
            continue
        needed = public | {r.id for r in state.runtimes.values() if r.private and r.enclave == shard.enclave}
        for node_id in shard.committee:
            node = state.nodes.get(node_id)
            if node is not None and not needed <= set(node.runtimes):
                missing = [state.runtimes[r].name for r in sorted(needed - set(node.runtimes))]
                yield Violation("RT-3", f"node {node.name} on enclave shard {shard.id} cannot run {missing}")


@rule("RT-2", "a private runtime belongs to one enclave and no node outside it declares it", GENESIS)
def check_rt_2_private_runtimes(state: ChainState, tools: Tools) -> Iterator[Violation]:
    members: dict[str, set[bytes]] = {}
    for shard in state.shards.values():
        if shard.enclave is not None:
            members.setdefault(shard.enclave, set()).update(shard.committee)
    for runtime in state.runtimes.values():
        if runtime.private and runtime.enclave not in state.enclaves:
            yield Violation("RT-2", f"private runtime {runtime.name} names no known enclave")
    for node in state.nodes.values():
        for rid in node.runtimes:
            runtime = state.runtimes.get(rid)
            if runtime is None:
                yield Violation("RT-1", f"node {node.name} declares unregistered runtime {rid.hex()[:12]}")
            elif runtime.private and node.id not in members.get(runtime.enclave or "", set()):
                yield Violation("RT-2", f"node {node.name} loads private runtime {runtime.name} but is not a node of {runtime.enclave}")
