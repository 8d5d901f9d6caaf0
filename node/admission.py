"""Which submitted transactions a node takes into its queue, and the rule behind each refusal.

A node checks what it can before a transaction costs its committee anything:
the TX-1 checks that need no execution (known sender, signature, not
replayed, fresh nonce, positive gas, declared accounts exist, script in the
subset) and the dispatch checks of ``shards.execution.kind_of`` (CMI-4 and
friends). The block's own checks run again at execution: a transaction
admitted here may still fail there (its nonce may be taken meanwhile).
"""

from __future__ import annotations

from sagachain.core.ledger import ChainState
from sagachain.core.rules import Tools
from sagachain.core.tx import Transaction
from sagachain.errors import RuleViolation
from shards.execution import kind_of


def admission_problem(chain: ChainState, tools: Tools, tx: Transaction) -> tuple[str, str] | None:
    """``(rule, reason)`` when ``tx`` must be refused now, else None."""
    sender = chain.accounts.get(tx.sender)
    if sender is None:
        return "TX-1", f"sender {tx.sender.hex()[:12]} is not an account of this chain"
    if not tools.verify(sender.public_key, tx.id, tx.signature):
        return "TX-1", f"the signature does not verify with {sender.name}'s key; sign the transaction id with the sender's key"
    if tx.id in chain.seen_tx:
        return "TX-1", "replayed: this transaction is already in a final block"
    last = chain.nonces.get(tx.sender, 0)
    if tx.nonce <= last:
        return "TX-1", f"nonce {tx.nonce} is not above {sender.name}'s last nonce {last} on chain; use {last + 1}"
    if tx.gas_limit <= 0:
        return "TX-1", f"gas limit {tx.gas_limit} must be positive"
    missing = [a.hex()[:12] for a in (*tx.account_ids(), tx.gas_payer) if a not in chain.accounts]
    if missing:
        return "TX-1", f"declared account(s) {missing} do not exist on this chain"
    if tools.check_script is not None:
        problem = tools.check_script(tx.script)
        if problem is not None:
            return "TX-1", problem
    try:
        kind_of(chain, tx)
    except RuleViolation as exc:
        return exc.rule or "TX-1", exc.message
    return None
