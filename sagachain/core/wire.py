"""Turning record dataclasses into plain trees and back.

Records (transactions, blocks, genesis entries) are frozen dataclasses. On the
wire and in chain files each is a MessagePack map from field name to value, so
the format is self-describing and docs/FORMAT.md can list fields by name. This
module does the conversion once, from the type hints, instead of a hand-written
``to_dict``/``from_dict`` pair per record that could drift from its fields.

Supported field types: ``int``, ``str``, ``bytes``, ``bool``, ``ObjRef``,
``X | None``, ``tuple[X, ...]``, ``dict[str, X]``, ``Any`` (a plain value
tree, e.g. object fields), nested record dataclasses, and types that
registered their own converters (:func:`register_codec`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from sagachain.core.encoding import DERIVED, ObjRef
from sagachain.errors import SagaError

T = TypeVar("T")


class WireError(ValueError):
    """Raised when a plain tree does not have the shape of the record asked for."""


_ENCODERS: dict[type, Callable[[Any], Any]] = {}
_DECODERS: dict[Any, Callable[[Any, str], Any]] = {}


def register_codec(tp: Any, decode: Callable[[Any, str], Any], encode: Callable[[Any], Any] | None = None, *, types: tuple[type, ...] = ()) -> None:
    """Give a type the field-by-field conversion cannot express its own pair of converters.

    A block's entries are a union told apart by a ``type`` tag, and so are the
    committee's messages: their modules register how they go on the wire, so any
    record or message holding one converts with no code of its own. ``tp`` is
    what a field's type hint names (a class, or a union alias); ``types`` are the
    classes whose values ``encode`` writes (``tp`` itself when it is a class).
    """
    _DECODERS[tp] = decode
    if encode is not None:
        for cls in types or (tp,):
            _ENCODERS[cls] = encode


def to_wire(value: Any) -> Any:
    """A record (or a tree of records) as plain lists, maps and scalars.

    An ObjRef stays an ObjRef: the encoding writes it as extension type 1.
    """
    if isinstance(value, ObjRef):
        return value
    encoder = _ENCODERS.get(type(value))
    if encoder is not None:
        return to_wire(encoder(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_wire(getattr(value, name)) for name in wire_fields(type(value))}
    if isinstance(value, tuple | list):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


@cache
def wire_fields(cls: type) -> tuple[str, ...]:
    """The fields of a record that go on the wire: all but the derived ones."""
    return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get(DERIVED))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_wire(cls: type[T], data: Any, where: str = "") -> T:
    """Rebuild a record of type ``cls`` from a plain tree; raise WireError on bad shape.

    A node converts every block and transaction it receives, so the common case
    (the tree fits) runs a converter compiled once per type; only a tree that
    does not fit takes the slower walk that names where it went wrong.
    """
    try:
        return _fast(cls)(data)  # type: ignore[no-any-return]
    except _Mismatch:
        return _convert(cls, data, where or cls.__name__)  # type: ignore[no-any-return]


class _Mismatch(Exception):
    """The tree does not fit; ``_convert`` says how."""


def _identity(data: Any) -> Any:
    return data


@cache
def _fast(tp: Any) -> Callable[[Any], Any]:
    """A converter for ``tp`` with the semantics of ``_convert``, raising ``_Mismatch`` instead of naming the problem."""
    if tp is Any:
        return _identity
    if tp in _DECODERS:
        decode = _DECODERS[tp]

        def custom(data: Any) -> Any:
            try:
                return decode(data, "")
            except (WireError, TypeError, ValueError, SagaError):
                raise _Mismatch from None

        return custom
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        nullable = type(None) in args
        options = [_fast(a) for a in args if a is not type(None)]

        def union(data: Any) -> Any:
            if data is None and nullable:
                return None
            for option in options:
                try:
                    return option(data)
                except _Mismatch:
                    pass
            raise _Mismatch

        return union
    if origin is tuple:
        (item_tp,) = [a for a in typing.get_args(tp) if a is not Ellipsis]
        item = _fast(item_tp)

        def sequence(data: Any) -> Any:
            if not isinstance(data, list):
                raise _Mismatch
            return tuple([item(v) for v in data])

        return sequence
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        key, value = _fast(key_tp), _fast(value_tp)

        def mapping(data: Any) -> Any:
            if not isinstance(data, dict):
                raise _Mismatch
            return {key(k): value(v) for k, v in data.items()}

        return mapping
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = [(name, _fast(hints[name])) for name in wire_fields(tp)]
        names = frozenset(name for name, _ in fields)

        def record(data: Any) -> Any:
            if not isinstance(data, dict) or data.keys() != names:
                raise _Mismatch
            try:
                return tp(**{name: convert(data[name]) for name, convert in fields})
            except (TypeError, ValueError, SagaError):
                raise _Mismatch from None

        return record
    if tp is bool:
        return _typed(lambda data: isinstance(data, bool))
    if tp is int:
        return _typed(lambda data: isinstance(data, int) and not isinstance(data, bool))
    if tp in (str, bytes, ObjRef):
        return _typed(lambda data: isinstance(data, tp))

    def unsupported(data: Any) -> Any:
        raise _Mismatch

    return unsupported


def _typed(fits: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def scalar(data: Any) -> Any:
        if not fits(data):
            raise _Mismatch
        return data

    return scalar


def _convert(tp: Any, data: Any, where: str) -> Any:
    if tp is Any:
        return data
    if tp in _DECODERS:
        return _DECODERS[tp](data, where)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        problems = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, data, where)
            except WireError as exc:  # try the union's next member
                problems.append(str(exc))
        raise WireError(" / ".join(problems) or f"{where}: expected one of {args}")
    if origin is tuple:
        if not isinstance(data, list):
            raise WireError(f"{where}: expected a list, got {type(data).__name__}")
        (item,) = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise WireError(f"{where}: expected a map, got {type(data).__name__}")
        ktp, vtp = typing.get_args(tp)
        return {_convert(ktp, k, where): _convert(vtp, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise WireError(f"{where}: expected a map for {tp.__name__}, got {type(data).__name__}")
        hints = _hints(tp)
        names = list(wire_fields(tp))
        missing = [n for n in names if n not in data]
        extra = [k for k in data if k not in names]
        if missing or extra:
            raise WireError(f"{where}: {tp.__name__} fields missing {missing} / unknown {extra}")
        kwargs = {n: _convert(hints[n], data[n], f"{where}.{n}") for n in names}
        try:
            return tp(**kwargs)
        except (TypeError, ValueError, SagaError) as exc:
            raise WireError(f"{where}: {exc}") from None
    if tp is bool:
        if not isinstance(data, bool):
            raise WireError(f"{where}: expected a bool, got {data!r}")
        return data
    if tp is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise WireError(f"{where}: expected an int, got {data!r}")
        return data
    if tp in (str, bytes, ObjRef):
        if not isinstance(data, tp):
            raise WireError(f"{where}: expected {tp.__name__}, got {type(data).__name__}")
        return data
    raise WireError(f"{where}: unsupported field type {tp!r}")
