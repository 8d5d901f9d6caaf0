"""Ed25519 identity keys and signatures (pynacl).

Keys are derived from a 32-byte seed, so a simulator run can derive every
node's and account's key from the run's seed and reproduce the same chain byte
for byte. Ed25519 signing is itself deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sagachain.core.encoding import hash_value
from sagachain.errors import InputError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def hex32(text: str, what: str, meaning: str) -> bytes:
    """The 32 bytes (a key, a seed, an id) that ``text`` writes as 64 hex digits; an error naming
    ``what`` otherwise. Operators paste these into configs and commands, so one message fits all."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InputError(f"{what} {text!r} must be 64 hex digits ({meaning})")
    return raw


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair. ``public`` is what goes on chain."""

    seed: bytes = field(repr=False)
    public: bytes = field(init=False)
    _signer: SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        signer = SigningKey(self.seed)
        object.__setattr__(self, "_signer", signer)
        object.__setattr__(self, "public", bytes(signer.verify_key))

    @classmethod
    def derive(cls, *parts: str | bytes | int) -> KeyPair:
        """A key pair whose seed is a hash of ``parts`` (deterministic runs only)."""
        return cls(hash_value(["sagachain-key", *parts]))

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message).signature


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s Ed25519 signature of ``message``."""
    if len(public) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        VerifyKey(public).verify(message, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class ModelledKey:
    """A stand-in for an Ed25519 key pair in very large simulations (``crypto: modelled``).

    Its "signature" is a hash binding the public key to the message: a checker
    can still tell which key signed what, but nothing is secret and nothing is
    unforgeable. The simulator charges the real operations' cost in virtual
    time instead (``sagachain.sim.costs``). Chains made this way audit clean
    only with ``--crypto modelled``, and results say which mode ran.
    """

    seed: bytes = field(repr=False)
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public", hash_value(["modelled-public", self.seed]))

    @classmethod
    def derive(cls, *parts: str | bytes | int) -> ModelledKey:
        return cls(hash_value(["sagachain-key", *parts]))

    def sign(self, message: bytes) -> bytes:
        return modelled_signature(self.public, message)


def modelled_signature(public: bytes, message: bytes) -> bytes:
    half = hash_value(["modelled-signature", public, message])
    return half + half


def modelled_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """The check of a ``ModelledKey`` signature (same signature as ``verify``)."""
    return signature == modelled_signature(public, message)
