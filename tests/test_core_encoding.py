"""OBJ-5: canonical encoding and hashing; records round-trip through the wire form."""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagachain.core.block import BlockHeader, Head
from sagachain.core.encoding import ObjRef, decode, decode_canonical, encode, hash_value, is_canonical
from sagachain.core.keys import KeyPair, verify
from sagachain.core.wire import WireError, from_wire, to_wire
from sagachain.errors import RuleViolation

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)


@given(values)
def test_obj_5_encoding_round_trips_and_is_canonical(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    assert is_canonical(data)


@given(st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1), min_size=2, max_size=6))
def test_obj_5_map_order_does_not_change_bytes(d: dict[str, int]) -> None:
    reversed_map = dict(reversed(list(d.items())))
    assert encode(d) == encode(reversed_map)
    assert hash_value(d) == hash_value(reversed_map)


def test_obj_5_floats_and_huge_integers_are_refused_with_the_rule() -> None:
    with pytest.raises(RuleViolation, match="OBJ-5"):
        encode({"x": 1.5})
    with pytest.raises(RuleViolation, match="OBJ-5"):
        encode([2**64])


def test_obj_5_non_canonical_bytes_are_detected() -> None:
    plain = msgpack.packb({"b": 1, "a": 2})
    assert not is_canonical(plain)
    assert is_canonical(encode({"b": 1, "a": 2}))


def test_object_references_survive_encoding() -> None:
    ref = ObjRef(b"\x07" * 32)
    assert decode(encode({"r": ref})) == {"r": ref}


def test_signatures_verify_only_the_signed_message() -> None:
    key = KeyPair.derive("test", "key")
    sig = key.sign(b"message")
    assert verify(key.public, b"message", sig)
    assert not verify(key.public, b"messagf", sig)
    assert KeyPair.derive("test", "key").public == key.public


def test_records_round_trip_and_bad_shapes_name_the_field() -> None:
    header = BlockHeader(
        chain=b"c" * 32, shard="P0", height=3, parent=b"p" * 32, time=10, producer=b"n" * 32, committee=b"m" * 32,
        body=b"b" * 32, gas_floor=100, gas_basis=(Head(shard="P1", height=2),), coinbase=5, fees=7, tax=1,
    )
    assert from_wire(BlockHeader, to_wire(header)) == header
    broken = to_wire(header)
    broken["height"] = "three"
    with pytest.raises(WireError, match="height"):
        from_wire(BlockHeader, broken)


def test_str_key_order_is_the_order_of_their_encodings() -> None:
    """The fast path for str keys must agree with sorting by encoded bytes, across length classes."""
    import msgpack

    keys = ["b", "a", "ab", "é", "z" * 31, "y" * 32, "x" * 255, "w" * 256, "", "10", "9"]
    encoded = encode({k: 0 for k in keys})
    order = list(msgpack.unpackb(encoded, raw=False).keys())
    assert order == sorted(keys, key=lambda k: msgpack.packb(k, use_bin_type=True))



@dataclass(frozen=True)
class _Left:
    a: int


@dataclass(frozen=True)
class _Right:
    b: str


@dataclass(frozen=True)
class _Holder:
    x: _Left | _Right


def test_a_union_of_records_tries_each_member() -> None:


    assert from_wire(_Holder, {"x": {"b": "hi"}}) == _Holder(x=_Right(b="hi"))
    with pytest.raises(WireError, match="_Left.*_Right"):
        from_wire(_Holder, {"x": {"c": 1}})


# -- the fast canonical check a node runs on every message ------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=6), st.binary(max_size=6))
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-5, 300)), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(tree=_trees)
def test_the_fast_check_accepts_exactly_the_canonical_encoding(tree: object) -> None:

    data = encode(tree)
    value, canonical = decode_canonical(data)
    assert canonical and value == decode(data)
    loose = msgpack.packb(tree, use_bin_type=True)  # msgpack's own key order: canonical only by luck
    assert decode_canonical(loose)[1] == is_canonical(loose)


@settings(max_examples=300, deadline=None)
@given(tree=_trees, data=st.data())
def test_the_fast_check_agrees_with_re_encoding_on_mutated_bytes(tree: object, data: st.DataObject) -> None:

    raw = bytearray(encode(tree))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        fast = decode_canonical(bytes(raw))[1]
    except (ValueError, TypeError, msgpack.UnpackException):
        fast = False
    assert fast == is_canonical(bytes(raw))


def test_the_fast_check_refuses_floats_long_integers_and_repeated_keys() -> None:

    assert not decode_canonical(msgpack.packb({"a": 1.5}))[1]
    assert not decode_canonical(msgpack.packb([1, 2.0]))[1]
    assert not decode_canonical(b"\xcd\x00\x01")[1]  # 1 as uint16
    assert not decode_canonical(b"\x82\xa1a\x01\xa1a\x02")[1]  # key "a" twice
    assert not decode_canonical(b"\x82\xa1b\x01\xa1a\x02")[1]  # keys out of order


def test_a_short_object_reference_is_malformed_bytes() -> None:
    short = b"\xd4\x01\x00"  # extension type 1 holding one byte
    with pytest.raises(ValueError, match="object reference of 1 bytes"):
        decode(short)
    with pytest.raises(ValueError):
        decode_canonical(short)
    assert not is_canonical(short)
