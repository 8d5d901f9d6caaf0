"""The node's wire format: length-prefixed frames carrying typed messages.

Nodes and clients talk over plain byte streams (TCP). A byte stream has no
message boundaries, so every message travels in a *frame*: a 4-byte
big-endian length, then that many bytes. The length is checked against a
limit before anything is allocated, so a peer cannot make a node reserve
gigabytes by sending four bytes.

A frame's body is one message: a canonical MessagePack map (OBJ-5) whose
``"type"`` names the message and whose other keys are the fields of a frozen
dataclass. Each message type is registered once, with :func:`message`, so
the node adds its own types later (block proposals, votes, ...) by declaring
a dataclass, in one place, without touching the reader.

After the handshake (``node/channel.py``) frame bodies are ciphertexts; this
module knows nothing of that. ``docs/PROTOCOL.md`` describes the bytes.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import msgpack
import trio

from sagachain.core.block import Block
from sagachain.core.encoding import decode_canonical, encode
from sagachain.core.objects import StoredObject
from sagachain.core.tx import Transaction
from sagachain.core.wire import WireError, from_wire, to_wire
from sagachain.errors import SagaError

HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024  # bytes of frame body; a block of a few thousand transactions fits
# Bytes asked of the stream per read. A socket read reserves what it is asked for, so asking
# for a whole announced frame at once would let a peer trickling bytes cost 4 MiB per byte.
_CHUNK = 64 * 1024

# Error codes: what an Error message's ``code`` says went wrong (docs/PROTOCOL.md, section 6).
PROTOCOL = "protocol"  # a frame or message broke the protocol: bad framing, encoding, type, signature
VERSION = "version"  # no protocol version both sides speak
REFUSED = "refused"  # the responder does not accept this node key (its ``authorize`` said no)
REQUEST = "request"  # a request was refused; unlike the codes above, the connection stays open
PINNED_KEY = "pinned-key"  # the responder presented another node key than the one pinned (MEM-5)


class ProtocolError(SagaError):
    """A peer broke the protocol, refused us, or the connection failed mid-exchange.

    ``code`` is the Error-message code that describes it to the peer
    (``PROTOCOL`` unless said otherwise), so a node can answer a bad
    connection with the same words it logs. The connection is no longer
    usable after this error: close it.
    """

    def __init__(self, message: str, *, rule: str | None = None, code: str = PROTOCOL) -> None:
        self.code = code
        super().__init__(message, rule=rule)


class PeerError(ProtocolError):
    """The peer sent an Error message: it refused or gave up on the exchange.

    Kept apart from :class:`ProtocolError` so a caller can tell "the peer said
    no, here is why" (show the reason to the operator) from "the bytes were
    bad" (drop the connection).
    """


class ChannelClosed(ProtocolError):
    """The peer closed the connection cleanly, between two frames."""


# -- framing -----------------------------------------------------------------


def frame(body: bytes, limit: int = MAX_FRAME) -> bytes:
    """``body`` with its length prefix; refuses a body over ``limit`` before sending anything."""
    if len(body) > limit:
        raise ProtocolError(
            f"frame of {len(body)} bytes exceeds the limit of {limit} bytes; "
            "split the data into several messages or raise the limit on both sides"
        )
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Reads frames from a trio stream, however the bytes are split into reads.

    Bytes that arrive after a frame's end stay buffered for the next one. A
    stream that ends mid-frame raises :class:`ProtocolError` (truncation),
    one that ends between frames raises :class:`ChannelClosed`; a length
    over the limit is refused from the 4-byte header alone.
    """

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def read(self, limit: int = MAX_FRAME) -> bytes:
        """The next frame's body; ``limit`` is the largest body accepted."""
        await self._fill(HEADER.size, "frame header")
        (length,) = HEADER.unpack_from(self._buffer)
        if length > limit:
            raise ProtocolError(
                f"peer announced a frame of {length} bytes, over the limit of {limit} bytes; "
                "the peer must split its data (or it is not speaking this protocol)"
            )
        await self._fill(HEADER.size + length, "frame body", after=HEADER.size)
        body = bytes(self._buffer[HEADER.size : HEADER.size + length])
        del self._buffer[: HEADER.size + length]
        return body

    async def _fill(self, size: int, wanted: str, after: int = 0) -> None:
        """Read until the buffer holds ``size`` bytes; ``wanted`` names the part from byte ``after`` on."""
        while len(self._buffer) < size:
            try:
                chunk = await self._stream.receive_some(_CHUNK)
            except trio.BrokenResourceError as exc:
                raise ProtocolError(f"connection broken while reading a {wanted}: {exc}") from None
            if not chunk:
                if not self._buffer:
                    raise ChannelClosed("peer closed the connection")
                raise ProtocolError(
                    f"connection closed mid-frame: got {len(self._buffer) - after} of the {size - after} bytes "
                    f"of a {wanted}; "
                    "the peer stopped early or sent a wrong length"
                )
            self._buffer += chunk


async def write_frame(stream: trio.abc.SendStream, body: bytes, limit: int = MAX_FRAME) -> None:
    """Send one frame; a broken connection becomes a :class:`ProtocolError`."""
    data = frame(body, limit)
    try:
        await stream.send_all(data)
    except trio.BrokenResourceError as exc:
        raise ProtocolError(f"connection broken while sending a frame of {len(body)} bytes: {exc}") from None


# -- messages ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Base of every message; a subclass is registered under its wire name by :func:`message`.

    Fields go on the wire through ``sagachain.core.wire`` (a map from field
    name to value); a field type that conversion cannot express by itself (a
    block, whose entries are a tagged union) registers its own converters there.
    """

    TYPE: ClassVar[str] = ""

    def fields_to_wire(self) -> dict[str, Any]:
        return to_wire(self)  # type: ignore[no-any-return]


MESSAGE_TYPES: dict[str, type[Message]] = {}
M = TypeVar("M", bound=type[Message])


def message(name: str) -> Callable[[M], M]:
    """Class decorator: register a message dataclass under the wire type ``name``.

    This is the one place a message type is added; the reader finds it here.
    """

    def register(cls: M) -> M:
        if name in MESSAGE_TYPES:
            taken = MESSAGE_TYPES[name].__name__
            raise ValueError(f"message type {name!r} is registered twice ({taken}, {cls.__name__}); pick another name")
        if "type" in {f.name for f in dataclasses.fields(cls)}:
            raise ValueError(f"{cls.__name__}: a message field may not be called 'type', the wire uses it for {name!r}")
        cls.TYPE = name
        MESSAGE_TYPES[name] = cls
        return cls

    return register


def encode_message(msg: Message) -> bytes:
    """The canonical bytes of ``msg``: its fields and its ``type``, as one map."""
    if type(msg).TYPE not in MESSAGE_TYPES:
        raise TypeError(f"{type(msg).__name__} is not a registered message type; decorate it with @message(name)")
    return encode({"type": msg.TYPE, **msg.fields_to_wire()})


MAX_DEPTH = 64  # deepest nesting of lists and maps any message has, with a wide margin


def _deeper_than(value: object, limit: int) -> bool:
    """Whether lists and maps nest deeper than ``limit`` (iteratively: the check itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def decode_message(body: bytes, expect: type[Message] | None = None) -> Message:
    """The message in a frame body; anything else is a :class:`ProtocolError` naming what was wrong.

    The body must be canonical (OBJ-5), so one message has exactly one
    encoding. ``expect`` restricts the type (the handshake knows what comes
    next); an Error message is then raised as :class:`PeerError`.
    """
    try:
        data, canonical = decode_canonical(body)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"frame body of {len(body)} bytes is not one MessagePack value: {exc}") from None
    if _deeper_than(data, MAX_DEPTH):
        raise ProtocolError(f"message nests deeper than {MAX_DEPTH} levels; no message of this protocol does")
    if not canonical:
        raise ProtocolError(
            "message is not canonical MessagePack (OBJ-5): sort map keys, use the shortest integer "
            "and length forms, bin for bytes and str for text, no floats",
            rule="OBJ-5",
        )
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(f"a message must be a map with a 'type' string, got {_describe(data)}")
    cls = MESSAGE_TYPES.get(data["type"])
    if cls is None:
        raise ProtocolError(f"unknown message type {data['type']!r}; known types: {', '.join(sorted(MESSAGE_TYPES))}")
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        msg = from_wire(cls, fields, data["type"])
    except WireError as exc:
        raise ProtocolError(f"bad {data['type']!r} message: {exc}") from None
    if expect is not None and not isinstance(msg, expect):
        if isinstance(msg, ErrorMessage):
            raise msg.as_exception()
        raise ProtocolError(f"expected a {expect.TYPE!r} message here, got {msg.TYPE!r}")
    return msg


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


# -- the message catalogue (docs/PROTOCOL.md, section 5) ----------------------

KEY_SIZE = 32  # Ed25519 and X25519 public keys, handshake nonces, ids
MAX_VERSIONS = 16  # more versions than any peer will ever need at once: keeps a Hello small


@message("hello")
@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Message):
    """First handshake message of each side: who I am, what I speak, my one-shot key."""

    versions: tuple[int, ...]  # protocol versions spoken
    node_key: bytes  # long-term Ed25519 public key
    ephemeral: bytes  # fresh X25519 public key, used for this connection only
    nonce: bytes  # 32 random bytes: a fresh transcript even if a key were reused

    def __post_init__(self) -> None:
        if not 1 <= len(self.versions) <= MAX_VERSIONS or not all(1 <= v <= 0xFFFF for v in self.versions):
            raise ProtocolError(
                f"hello: versions must be 1 to {MAX_VERSIONS} integers in 1..65535, got {list(self.versions)}"
            )
        for name in ("node_key", "ephemeral", "nonce"):
            if len(getattr(self, name)) != KEY_SIZE:
                raise ProtocolError(f"hello: {name} must be {KEY_SIZE} bytes, got {len(getattr(self, name))}")


@message("hello_ack")
@dataclass(frozen=True, slots=True, kw_only=True)
class HelloAck(Message):
    """Second handshake message of each side: the chosen version and my signature of the transcript."""

    version: int
    signature: bytes  # Ed25519, 64 bytes


@message("error")
@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage(Message):
    """Why the sender refuses or gives up; the sender closes the connection after it
    when it is about the connection itself (every code defined here)."""

    code: str
    reason: str  # for a human: what was wrong and what to do
    rule: str | None  # the SPEC.md rule id behind it, if any

    def as_exception(self) -> PeerError:
        return PeerError(f"peer refused ({self.code}): {self.reason}", rule=self.rule, code=self.code)


@message("ping")
@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Message):
    """Liveness probe; the peer answers Pong with the same ``seq``."""

    seq: int


@message("pong")
@dataclass(frozen=True, slots=True, kw_only=True)
class Pong(Message):
    seq: int


@message("submit_tx")
@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitTx(Message):
    """A client hands a signed transaction (TX-1) to a node for its queue."""

    tx: Transaction


@message("tx_receipt")
@dataclass(frozen=True, slots=True, kw_only=True)
class TxReceipt(Message):
    """Answer to SubmitTx: queued, or refused with the reason and rule.

    Queued is not executed: inclusion in a block is reported by an Event.
    """

    tx: bytes  # the transaction id
    accepted: bool
    reason: str | None
    rule: str | None


@message("get_account")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetAccount(Message):
    account: bytes  # account id


@message("account")
@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReply(Message):
    """Answer to GetAccount, as of the answering node's latest final block of the owning shard.

    ``value`` is None when the node does not know the account or may not
    show it (an enclave account's state never leaves the enclave, MEM-4).
    """

    account: bytes
    shard: str | None  # the owning shard (OBJ-2), if known
    height: int  # that shard's height the answer is taken at; 0 if unknown
    value: StoredObject | None
    nonce: int  # the account's last nonce in a final block (TX-1), 0 if none: a sender signs nonce + 1


@message("get_block")
@dataclass(frozen=True, slots=True, kw_only=True)
class GetBlock(Message):
    shard: str
    height: int


@message("block")
@dataclass(frozen=True, slots=True, kw_only=True)
class BlockReply(Message):
    """Answer to GetBlock. ``block`` is None when the node does not have that block; a block
    goes as the map a chain file stores (docs/FORMAT.md), entries tagged with their kind."""

    shard: str
    height: int
    block: Block | None


@message("subscribe")
@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Message):
    """Ask to be sent an Event for each new item of the named topics (docs/PROTOCOL.md, 5.6)."""

    topics: tuple[str, ...]


@message("event")
@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Message):
    """One item of a subscribed topic. ``seq`` counts the events of this connection from 0."""

    topic: str
    seq: int
    data: Any  # a plain value tree; its shape is the topic's
