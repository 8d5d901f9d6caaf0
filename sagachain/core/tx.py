"""Transactions (TX-1) and the classification of open, enclave and mixed ones.

A transaction is a SagaPython script with its sender, nonce, gas limit, the
accounts its script touches (each under an alias the script uses as a name),
the non-enclave account that pays its gas (GAS-1), and the sender's Ed25519
signature over the transaction id.

The gas payer is named apart from the touched accounts: it is debited the fee
but is not part of the script's reach unless also listed. That is what lets an
enclave transaction (TX-3) touch only enclave accounts and still pay in
SagaCoin, which enclave accounts never hold (MINT-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sagachain.core.encoding import hash_value
from sagachain.core.keys import KeyPair, ModelledKey
from sagachain.core.wire import DERIVED, wire_fields

OPEN = "open"
ENCLAVE = "enclave"
MIXED = "mixed"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUse:
    """An account a transaction touches, and the name the script knows it by."""

    alias: str
    account: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """A signed user transaction (TX-1)."""

    sender: bytes
    nonce: int
    gas_limit: int
    gas_payer: bytes
    accounts: tuple[AccountUse, ...]
    script: str
    signature: bytes
    id: bytes = field(default=b"", init=False, repr=False, compare=False, metadata={DERIVED: True})

    def __post_init__(self) -> None:
        # The id is asked for constantly (queues, placement, replay protection); hash once.
        object.__setattr__(self, "id", hash_value(["tx", self.unsigned()]))

    def unsigned(self) -> dict[str, object]:
        """Everything but the signature: what the id hashes and the sender signs (ready for ``encode``)."""
        return {name: getattr(self, name) for name in wire_fields(Transaction) if name != "signature"}

    def account_ids(self) -> tuple[bytes, ...]:
        return tuple(use.account for use in self.accounts)


def make_transaction(
    *,
    key: KeyPair | ModelledKey,
    sender: bytes,
    nonce: int,
    gas_limit: int,
    gas_payer: bytes,
    accounts: dict[str, bytes],
    script: str,
) -> Transaction:
    """Build and sign a transaction; ``accounts`` maps alias to account id."""
    draft = Transaction(
        sender=sender,
        nonce=nonce,
        gas_limit=gas_limit,
        gas_payer=gas_payer,
        accounts=tuple(AccountUse(alias=a, account=i) for a, i in accounts.items()),
        script=script,
        signature=b"",
    )
    return replace(draft, signature=key.sign(draft.id))


def classify(enclaves_touched: set[str], touches_public: bool) -> str:
    """TX-2..TX-4: the kind of a transaction from the enclaves of the accounts it touches.

    Several enclaves at once is not a kind at all (CMI-4); callers check that first.
    """
    if not enclaves_touched:
        return OPEN
    return MIXED if touches_public else ENCLAVE
