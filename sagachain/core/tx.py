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

from dataclasses import dataclass

from sagachain.core.encoding import hash_value
from sagachain.core.keys import KeyPair, verify
from sagachain.core.wire import to_wire

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

    def unsigned(self) -> dict[str, object]:
        wire = to_wire(self)
        del wire["signature"]
        return wire

    @property
    def id(self) -> bytes:
        """The transaction id: hash of everything but the signature (what is signed)."""
        return hash_value(["tx", self.unsigned()])

    def account_ids(self) -> tuple[bytes, ...]:
        return tuple(use.account for use in self.accounts)

    def signature_valid(self, public_key: bytes) -> bool:
        return verify(public_key, self.id, self.signature)


def make_transaction(
    *,
    key: KeyPair,
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
    return Transaction(**{**_fields(draft), "signature": key.sign(draft.id)})


def _fields(tx: Transaction) -> dict[str, object]:
    return {name: getattr(tx, name) for name in Transaction.__dataclass_fields__}


def classify(enclaves_touched: set[str], touches_public: bool) -> str:
    """TX-2..TX-4: the kind of a transaction from the enclaves of the accounts it touches.

    Several enclaves at once is not a kind at all (CMI-4); callers check that first.
    """
    if not enclaves_touched:
        return OPEN
    return MIXED if touches_public else ENCLAVE
