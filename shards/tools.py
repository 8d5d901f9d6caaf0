"""The runtime-backed tools the rule checks borrow (see sagachain.core.rules.tools)."""

from __future__ import annotations

from dataclasses import replace

from runtimes import check_script, compile_class
from sagachain.core.keys import modelled_verify
from sagachain.core.objects import ClassRecord
from sagachain.core.rules.tools import Tools
from sagachain.errors import ScriptError
from shards.execution import replay_open


def script_problem(source: str) -> str | None:
    """TX-1: None when ``source`` is in the SagaPython subset, else the error naming line and construct."""
    try:
        check_script(source)
    except ScriptError as exc:
        return exc.message if exc.message.startswith("line") else str(exc)
    return None


def class_problem(cls: ClassRecord) -> str | None:
    """CLS-1: None when an open class's method table is what its code declares."""
    if cls.code is None:
        return None
    try:
        compiled = compile_class(
            name=cls.name, code=cls.code, base=cls.base, runtime=cls.runtime, private=False, enclave=cls.enclave, owner=cls.owner
        )
    except ScriptError as exc:
        return str(exc)
    if compiled.methods != cls.methods:
        return "its method table differs from the one its code declares"
    return None


def default_tools() -> Tools:
    return Tools(replay_open=replay_open, check_script=script_problem, check_class=class_problem)


def tools_for(crypto: str) -> Tools:
    """The tools for a chain made in ``crypto`` mode: ``real`` Ed25519, or ``modelled`` signatures."""
    tools = default_tools()
    return replace(tools, verify=modelled_verify) if crypto == "modelled" else tools
