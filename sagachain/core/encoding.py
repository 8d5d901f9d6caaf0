"""Canonical encoding and hashing (OBJ-5).

Everything that is hashed or signed is first turned into bytes by
:func:`encode`: deterministic MessagePack, maps with keys sorted by their own
encoding, integers in their shortest form, no floats. Two equal values give
equal bytes on every machine, so their BLAKE3 hashes are equal too.

Object references are MessagePack extension type 1 holding the 32-byte id, so
a reader can tell a reference from a plain byte string.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from typing import Any

import blake3
import msgpack

from sagachain.errors import RuleViolation

HASH_SIZE = 32
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
OBJREF_EXT = 1
DERIVED = "derived"  # field metadata: a cache computed from the other fields, never on the wire or hashed


@dataclass(frozen=True, slots=True)
class ObjRef:
    """A reference to an object by id, as stored in object fields."""

    id: bytes

    def __post_init__(self) -> None:
        if len(self.id) != HASH_SIZE:
            raise RuleViolation("OBJ-1", f"object id must be {HASH_SIZE} bytes, got {len(self.id)}")

    def __repr__(self) -> str:
        return f"ObjRef({self.id.hex()[:12]})"


def _str_order(key: str) -> tuple[int, bytes]:
    """A str encodes as its length class and length, then its UTF-8 bytes, and the classes
    grow with the length: ordering by (byte length, bytes) is ordering by encoding."""
    raw = key.encode()
    return len(raw), raw


@cache
def _record_fields(cls: type) -> tuple[str, ...] | None:
    """For a record dataclass, its wire fields in canonical key order; None for other types.

    Encoding a record directly gives the very bytes of encoding its ``to_wire``
    map (the same keys, sorted the same way) without building that map.
    """
    if not dataclasses.is_dataclass(cls):
        return None
    names = [f.name for f in dataclasses.fields(cls) if not f.metadata.get(DERIVED)]
    return tuple(sorted(names, key=_str_order))


def _canonical(value: Any) -> Any:
    """Turn ``value`` into a tree msgpack encodes canonically (OBJ-5)."""
    kind = type(value)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise RuleViolation("OBJ-5", f"integer {value} is outside MessagePack's range [{INT_MIN}, {INT_MAX}]")
        return value
    if kind is list or kind is tuple:
        return [_canonical(v) for v in value]
    if kind is ObjRef:
        return msgpack.ExtType(OBJREF_EXT, value.id)
    if isinstance(value, dict):
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        if all(type(k) is str for k, _ in items):
            items.sort(key=lambda kv: _str_order(kv[0]))
        else:
            items.sort(key=lambda kv: _packb(kv[0]))
        return _SortedMap(items)
    fields = _record_fields(kind)
    if fields is not None:
        return _SortedMap([(name, _canonical(getattr(value, name))) for name in fields])
    if isinstance(value, float):
        raise RuleViolation("OBJ-5", f"floats are not allowed in hashed data, got {value!r}")
    for base in (bool, int, str, bytes):  # subclasses (enums and the like) encode as their base value
        if isinstance(value, base):
            return _canonical(base(value))
    raise RuleViolation("OBJ-5", f"cannot encode a value of type {type(value).__name__}")


class _SortedMap(dict):  # type: ignore[type-arg]
    """A dict that msgpack writes in the order it was built (already sorted)."""

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        super().__init__(items)


def _packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=False)


def encode(value: Any) -> bytes:
    """Canonical bytes of ``value`` (OBJ-5)."""
    return _packb(_canonical(value))


def _ext_hook(code: int, data: bytes) -> Any:
    if code == OBJREF_EXT:
        if len(data) != HASH_SIZE:  # malformed bytes, like any other: ValueError, as decode promises
            raise ValueError(f"object reference of {len(data)} bytes; ids are {HASH_SIZE} (OBJ-1)")
        return ObjRef(data)
    raise ValueError(f"unknown extension type {code}")


def decode(data: bytes) -> Any:
    """Inverse of :func:`encode`. Raises ``ValueError`` on malformed bytes."""
    return msgpack.unpackb(
        data,
        raw=False,
        strict_map_key=False,
        ext_hook=_ext_hook,
        use_list=True,
    )


def decode_canonical(data: bytes) -> tuple[Any, bool]:
    """Decode ``data`` and tell whether it is canonical (OBJ-5), as ``is_canonical`` would, at C speed.

    A node checks every message it receives; re-encoding each decoded tree with
    :func:`encode` would cost as much again as decoding it. Instead the decoder's
    hooks check, as each map and array is built, that map keys come in canonical
    order (the order of their encodings, strictly: no repeats) and that no float
    appears; msgpack's C packer then re-encodes the tree in the order it was read,
    with the shortest forms, and the bytes must be the same.
    Raises ``ValueError`` (or msgpack's errors) on bytes that are not one value.
    """
    ok = True

    def pairs(items: list[tuple[Any, Any]]) -> dict[Any, Any]:
        nonlocal ok
        if ok:
            keys = tuple(k for k, _ in items)
            ordered = _KEY_ORDER.get(keys)
            if ordered is None:
                ordered = _keys_in_order(keys)
                if len(_KEY_ORDER) < _KEY_ORDER_KEPT and all(type(k) is str for k in keys):  # 1 == True: cache str keys only
                    _KEY_ORDER[keys] = ordered
            if not ordered or any(type(v) is float for _, v in items):
                ok = False
        return dict(items)

    def arrays(items: list[Any]) -> list[Any]:
        nonlocal ok
        if ok and any(type(v) is float for v in items):
            ok = False
        return items

    tree = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True,
                           object_pairs_hook=pairs, list_hook=arrays)
    if not ok or type(tree) is float:
        return tree, False
    return tree, msgpack.packb(tree, use_bin_type=True, default=_objref_ext) == data


_KEY_ORDER: dict[tuple[Any, ...], bool] = {}  # records repeat their key sets: judge each set once
_KEY_ORDER_KEPT = 4096


def _keys_in_order(keys: tuple[Any, ...]) -> bool:
    """Strictly increasing by encoding: the canonical order, no key twice, and no float key."""
    if any(type(k) is float for k in keys):
        return False
    encoded = [_packb(k) if type(k) is not ObjRef else encode(k) for k in keys]
    return all(a < b for a, b in zip(encoded, encoded[1:]))


def _objref_ext(value: Any) -> Any:
    if type(value) is ObjRef:
        return msgpack.ExtType(OBJREF_EXT, value.id)
    raise TypeError(f"cannot encode a value of type {type(value).__name__}")


def is_canonical(data: bytes) -> bool:
    """True when ``data`` decodes and re-encodes to the very same bytes (OBJ-5)."""
    try:
        return encode(decode(data)) == data
    except (ValueError, TypeError, RuleViolation, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return False


def hash_bytes(data: bytes) -> bytes:
    """BLAKE3-256 of raw bytes."""
    return blake3.blake3(data).digest()


def hash_value(value: Any) -> bytes:
    """BLAKE3-256 of the canonical encoding of ``value`` (OBJ-5)."""
    return hash_bytes(encode(value))


def derive_id(*parts: str | bytes | int) -> bytes:
    """A 32-byte id derived from a domain tag and names, e.g. ``derive_id("account", "alice")``."""
    return hash_value(["sagachain-id", *parts])
