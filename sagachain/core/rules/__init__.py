"""The rules of SPEC.md as pure functions, each named after its rule id.

Importing this package registers every check in ``catalog.CHECKS``; ``judge``
runs them over a genesis or a block.
"""

from sagachain.core.rules import classes, genesis_rules, mailbox, membership, money, ownership, structure, transactions
from sagachain.core.rules.catalog import CHECKS, RULE_TEXT, Violation
from sagachain.core.rules.judge import APPLIED, IGNORED, REFUSED, Coverage, Verdict, check_and_apply, check_genesis, judge_block, not_honoured
from sagachain.core.rules.tools import Replay, Tools

__all__ = [
    "APPLIED",
    "IGNORED",
    "REFUSED",
    "not_honoured",
    "CHECKS",
    "RULE_TEXT",
    "Coverage",
    "Replay",
    "Tools",
    "Verdict",
    "Violation",
    "check_and_apply",
    "check_genesis",
    "judge_block",
    "classes",
    "genesis_rules",
    "mailbox",
    "membership",
    "money",
    "ownership",
    "structure",
    "transactions",
]
