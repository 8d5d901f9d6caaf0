"""A node's key files through a rotation (MEM-5): ``node.key``, ``node.key.next``, ``node.key.previous``.

``sagachain enclave rotate-key`` keeps the new seed in ``node.key.next``
from before its transaction may leave until the rotation is final, then
moves it into ``node.key`` and keeps the old seed in ``node.key.previous``
(one hex line each, oldest first; ``node.config.load_previous_keys`` reads
it). Every step can be repeated after a crash without losing a seed or
recording one twice, and every file is mode 0600 from the moment it exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from node.config import KEY_FILE, PREVIOUS_KEYS_FILE
from sagachain.core.keys import KeyPair, hex32

NEXT_KEY_FILE = "node.key.next"  # the new seed, until the rotation is final


def write_secret(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600 from the start: a crash leaves the old
    file or the new one, never half a seed, and no other user ever reads it."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def read_next_key(directory: Path) -> KeyPair | None:
    """The seed an unfinished rotate-key left in DIR/node.key.next, if any."""
    path = directory / NEXT_KEY_FILE
    if not path.exists():
        return None
    return KeyPair(hex32(path.read_text().strip(), f"{path}: its content", "an Ed25519 seed"))


def finish_rotation(directory: Path, old: KeyPair, new: KeyPair) -> None:
    """Once the rotation is final: the old seed appended to node.key.previous (once, even when
    run again after a crash), the new one in node.key, node.key.next gone; all mode 0600."""
    previous = directory / PREVIOUS_KEYS_FILE
    lines = previous.read_text().split() if previous.exists() else []
    if old.seed != new.seed and old.seed.hex() not in lines:  # node.key holds the new seed already after a crash mid-way
        descriptor = os.open(previous, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a") as out:
            out.write(old.seed.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
    write_secret(directory / KEY_FILE, new.seed.hex() + "\n")
    (directory / NEXT_KEY_FILE).unlink(missing_ok=True)
