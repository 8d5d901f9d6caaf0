"""The auditor: reads a chain file and checks every rule public data can check.

Given an enclave's sealed state and key it also re-executes the enclave's
transactions (TX-6). ``audit_chain`` is the pure function; ``report`` prints
it or turns it into JSON; ``sagachain audit`` is the command.
"""

from sagachain.audit.auditor import (
    AuditReport,
    IgnoredBlock,
    RuleRow,
    Tooling,
    audit_chain,
    default_tooling,
    load_enclave,
    missing_tools,
)

__all__ = [
    "AuditReport",
    "IgnoredBlock",
    "RuleRow",
    "Tooling",
    "audit_chain",
    "default_tooling",
    "load_enclave",
    "missing_tools",
]
