"""Which submitted transactions a shard takes into its queue, and the rule behind each refusal.

Both drivers admit through here (the node when a client submits, every shard
machine when a transaction reaches it): the TX-1 checks that need no
execution, from the one statement of TX-1 (``sagachain.core.rules.
transactions.tx_1_problems``), then the dispatch checks of
``shards.execution.kind_of`` (CMI-4 and friends). The block's own checks run
again at execution: a transaction admitted here may still fail there (its
nonce may be taken meanwhile).
"""

from __future__ import annotations

from sagachain.core.ledger import ChainState
from sagachain.core.rules import Tools
from sagachain.core.rules.transactions import tx_1_problems
from sagachain.core.tx import Transaction
from sagachain.errors import RuleViolation
from shards.execution import kind_of


def admission_problem(chain: ChainState, tools: Tools, tx: Transaction) -> tuple[str, str] | None:
    """``(rule, reason)`` when ``tx`` must be refused now, else None."""
    for problem in tx_1_problems(chain, tx, tools):
        return "TX-1", problem
    try:
        kind_of(chain, tx)
    except RuleViolation as exc:
        return exc.rule or "TX-1", exc.message
    return None
