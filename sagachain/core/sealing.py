"""Sealing to a node's or a device's key with a one-shot sender key (MEM-3, MBX-1).

Every identity in the project has one Ed25519 key. Sealing needs Diffie-Hellman,
so the X25519 key is derived from the Ed25519 one (the birational map libsodium
implements): nobody publishes a second key, and a roster entry or a device
record already holds everything a sender needs.

A sealed box is ``E || ciphertext``: ``E`` is the public half of a one-shot
X25519 key the sender draws for this box alone, the ciphertext is
XChaCha20-Poly1305 under a key hashed from the shared secret and both public
keys. The nonce is derived from the two public keys, which is safe because
``E`` is never reused. Associated data (``context``) binds a box to where it
belongs (an enclave and epoch, a mailbox and sequence number) so it cannot be
replayed elsewhere.

Randomness is a parameter (``Entropy``), never drawn here: the simulator
passes a seeded source and gets the same bytes on every run, a node passes
``os.urandom``.
"""

from __future__ import annotations

from collections.abc import Callable

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
    crypto_sign_ed25519_pk_to_curve25519,
)
from nacl.exceptions import CryptoError
from nacl.signing import SigningKey

from sagachain.core.encoding import hash_value
from sagachain.errors import InputError

Entropy = Callable[[int], bytes]  # returns that many fresh random bytes

KEY_SIZE = 32
OVERHEAD = 32 + 16  # the one-shot public key and the authentication tag


def x25519_public(ed25519_public: bytes) -> bytes:
    """The X25519 public key of an Ed25519 public key; InputError when it is not a valid point."""
    try:
        return bytes(crypto_sign_ed25519_pk_to_curve25519(ed25519_public))
    except (CryptoError, ValueError, TypeError) as exc:
        raise InputError(f"public key {ed25519_public[:8].hex()}... is not a valid Ed25519 key ({exc})") from None


def x25519_secret(ed25519_seed: bytes) -> bytes:
    """The X25519 secret key of the Ed25519 key with this 32-byte seed."""
    return bytes(SigningKey(ed25519_seed).to_curve25519_private_key())


def x25519_public_of_secret(secret: bytes) -> bytes:
    return bytes(crypto_scalarmult_base(secret))


def _box_key(shared: bytes, one_shot: bytes, recipient: bytes) -> tuple[bytes, bytes]:
    key = hash_value(["seal-key", shared, one_shot, recipient])
    nonce = hash_value(["seal-nonce", one_shot, recipient])[:24]
    return key, nonce


def seal(recipient_x25519: bytes, plaintext: bytes, context: bytes, entropy: Entropy) -> bytes:
    """Seal ``plaintext`` so that only the holder of ``recipient_x25519``'s secret opens it."""
    one_secret = entropy(KEY_SIZE)
    if len(one_secret) != KEY_SIZE:
        raise ValueError("entropy must return exactly the number of bytes asked for")
    one_public = bytes(crypto_scalarmult_base(one_secret))
    shared = bytes(crypto_scalarmult(one_secret, recipient_x25519))
    key, nonce = _box_key(shared, one_public, recipient_x25519)
    return one_public + bytes(crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, context, nonce, key))


def open_sealed(secret_x25519: bytes, sealed: bytes, context: bytes) -> bytes | None:
    """The plaintext of a box sealed to this secret's public key under ``context``; None otherwise."""
    if len(sealed) < OVERHEAD:
        return None
    one_public, body = sealed[:KEY_SIZE], sealed[KEY_SIZE:]
    mine = bytes(crypto_scalarmult_base(secret_x25519))
    try:
        shared = bytes(crypto_scalarmult(secret_x25519, one_public))
        key, nonce = _box_key(shared, one_public, mine)
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(body, context, nonce, key))
    except (CryptoError, ValueError, TypeError):
        return None


def secret_encrypt(key: bytes, plaintext: bytes, context: bytes, entropy: Entropy) -> bytes:
    """Encrypt under a shared symmetric key (an epoch key, a conversation key): ``nonce || ciphertext``."""
    nonce = entropy(24)
    return nonce + bytes(crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, context, nonce, key))


def secret_decrypt(key: bytes, sealed: bytes, context: bytes) -> bytes | None:
    if len(sealed) < 24 + 16:
        return None
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(sealed[24:], context, sealed[:24], key))
    except (CryptoError, ValueError, TypeError):
        return None
