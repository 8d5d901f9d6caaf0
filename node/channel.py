"""An authenticated, encrypted channel between two nodes (or a client and a node).

Off-chain enclave data travels between enclave nodes (MEM-4) and a node must
know which node it is talking to (MEM-5), so every connection starts with a
handshake that proves both long-term Ed25519 node keys and agrees on fresh
session keys, and every later frame is encrypted and authenticated.

The handshake, in frames (docs/PROTOCOL.md, section 4, is the reference):

    initiator                                   responder
      Hello{versions, node_key, ephemeral, nonce}  ->
                                                   (authorize the claimed node key; pick the version)
                                               <-  Hello{...}          or Error and close
                                               <-  HelloAck{version, signature}
      (check the pinned key, verify)
      HelloAck{version, signature}             ->  (verify)
      encrypted frames                        <->  encrypted frames

Both signatures cover the transcript (the hashes of both Hello frames as
sent) and the signer's role, so a signature proves the key holder took part
in this very exchange, with these ephemeral keys. The session keys come from
the X25519 shared secret of the two ephemeral keys and the transcript: a
stolen node key later does not decrypt recorded traffic (forward secrecy).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import nacl.exceptions
import trio
from nacl.bindings import crypto_scalarmult
from nacl.public import PrivateKey
from nacl.secret import SecretBox

from sagachain.core.encoding import hash_bytes, hash_value
from sagachain.core.keys import KeyPair, verify
from node.wire import (
    MAX_FRAME,
    PINNED_KEY,
    REFUSED,
    VERSION,
    ChannelClosed,
    ErrorMessage,
    FrameReader,
    Hello,
    HelloAck,
    Message,
    PeerError,
    ProtocolError,
    decode_message,
    encode_message,
    write_frame,
)

VERSIONS = (2,)  # protocol versions this code speaks (1 lacked the node-to-node messages; never deployed)
HANDSHAKE_FRAME = 4096  # largest handshake frame accepted: a Hello is about 150 bytes
HANDSHAKE_TIMEOUT = 10.0  # seconds a handshake may take before the connection is dropped
REFUSAL_TIMEOUT = 1.0  # seconds spent telling a failed peer why before closing anyway
MAC_SIZE = SecretBox.MACBYTES
NONCE_SIZE = SecretBox.NONCE_SIZE
MAX_COUNTER = 2**64 - 1
INITIATOR = "initiator"
RESPONDER = "responder"

Authorize = Callable[[bytes], str | None]
T = TypeVar("T", bound=Message)


def transcript_hash(initiator_hello: bytes, responder_hello: bytes) -> bytes:
    """What both sides sign and derive keys from: both Hello frame bodies, byte for byte as sent."""
    return hash_value(["sagachain-handshake", hash_bytes(initiator_hello), hash_bytes(responder_hello)])


def signed_message(role: str, version: int, transcript: bytes) -> bytes:
    """The bytes a side signs; the role keeps a signature from being replayed as the other side's."""
    return hash_value(["sagachain-handshake-signature", role, version, transcript])


def session_key(direction: str, shared: bytes, transcript: bytes) -> bytes:
    """The SecretBox key of one direction (``"initiator->responder"`` or the reverse)."""
    return hash_value(["sagachain-session-key", direction, shared, transcript])


def counter_nonce(counter: int) -> bytes:
    """The 24-byte SecretBox nonce of the ``counter``-th frame of a direction (big-endian)."""
    return counter.to_bytes(NONCE_SIZE, "big")


def highest_common(mine: tuple[int, ...], theirs: tuple[int, ...]) -> int | None:
    common = set(mine) & set(theirs)
    return max(common) if common else None


@dataclass(eq=False)
class Channel:
    """An open channel: :meth:`send` and :meth:`receive` messages, encrypted on the wire.

    One task may send while another receives; sends from several tasks are
    serialized (each frame must take the next counter, in order). A failed
    send or receive closes the channel: the counters cannot resynchronize.
    """

    peer: bytes  # the peer's Ed25519 node key, proven by its handshake signature
    version: int  # the protocol version agreed
    _stream: trio.abc.Stream
    _reader: FrameReader
    _send_box: SecretBox
    _receive_box: SecretBox
    _sent: int = 0
    _received: int = 0
    _send_lock: trio.Lock = field(default_factory=trio.Lock)
    _closed: bool = False

    async def send(self, msg: Message) -> None:
        plain = encode_message(msg)
        if len(plain) + MAC_SIZE > MAX_FRAME:
            raise ProtocolError(
                f"{msg.TYPE!r} message of {len(plain)} bytes exceeds the limit of {MAX_FRAME - MAC_SIZE} bytes "
                "(a frame's limit less the 16-byte tag); split it"
            )
        async with self._send_lock:
            self._check_open()
            if self._sent > MAX_COUNTER:
                raise ProtocolError(f"{MAX_COUNTER + 1} frames sent on one channel; reconnect for fresh keys")
            sealed = self._send_box.encrypt(plain, counter_nonce(self._sent)).ciphertext
            self._sent += 1
            try:
                await write_frame(self._stream, sealed)
            except ProtocolError:
                await self.aclose()
                raise

    async def receive(self) -> Message:
        """The next message; :class:`ChannelClosed` once the peer has closed between frames."""
        self._check_open()
        try:
            sealed = await self._reader.read(MAX_FRAME)
            try:
                plain = self._receive_box.decrypt(sealed, counter_nonce(self._received))
            except nacl.exceptions.CryptoError:
                raise ProtocolError(
                    f"frame {self._received} from the peer does not decrypt: tampered, replayed, "
                    "reordered or not from this session; closing the channel",
                    rule="MEM-4",
                ) from None
            self._received += 1
            return decode_message(plain)
        except ProtocolError:
            await self.aclose()
            raise

    async def __aiter__(self) -> AsyncIterator[Message]:
        """Messages until the peer closes cleanly; other errors propagate."""
        while True:
            try:
                yield await self.receive()
            except ChannelClosed:
                return

    def _check_open(self) -> None:
        """Refuse use after close: frames already buffered must not be read past a failure."""
        if self._closed:
            raise trio.ClosedResourceError("the channel is closed (by aclose or after a protocol error)")

    async def aclose(self) -> None:
        self._closed = True
        await self._stream.aclose()

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Handshake:
    """One side's handshake state: its keys, and the frames it has read and written."""

    def __init__(self, stream: trio.abc.Stream, key: KeyPair) -> None:
        self.stream = stream
        self.key = key
        self.reader = FrameReader(stream)
        self.sealed: Channel | None = None  # the session, once this side's HelloAck is out
        self.ephemeral = PrivateKey.generate()
        self.hello = Hello(
            versions=VERSIONS,
            node_key=key.public,
            ephemeral=bytes(self.ephemeral.public_key),
            nonce=secrets.token_bytes(32),
        )

    async def send(self, msg: Message) -> bytes:
        body = encode_message(msg)
        await write_frame(self.stream, body, HANDSHAKE_FRAME)
        return body

    async def receive(self, expect: type[T]) -> tuple[T, bytes]:
        body = await self.reader.read(HANDSHAKE_FRAME)
        msg = decode_message(body, expect)
        assert isinstance(msg, expect)  # decode_message checked it
        return msg, body

    async def refuse(self, error: ProtocolError) -> None:
        """Tell the peer why, if it is still there and listening, then close; the caller raises ``error``.

        The Error goes sealed once this side has sent its HelloAck (``sealed``
        is set): from then on the peer reads sealed frames only. A peer that
        sent an Error or closed needs no answer; one that does not read gets a
        second, not a stalled handler.
        """
        if not isinstance(error, PeerError | ChannelClosed):
            answer = ErrorMessage(code=error.code, reason=error.message, rule=error.rule)
            with trio.move_on_after(REFUSAL_TIMEOUT):
                try:
                    if self.sealed is not None:
                        await self.sealed.send(answer)
                    else:
                        await self.send(answer)
                except ProtocolError:
                    pass  # the peer is gone already; the local error is what matters
        await self.stream.aclose()

    async def run(self, steps: Callable[[], Awaitable[Channel]], timeout: float) -> Channel:
        """Run one side's handshake ``steps``; on any failure close the stream, telling the peer why if we can."""
        try:
            with trio.fail_after(timeout):
                return await steps()
        except trio.TooSlowError:
            await trio.aclose_forcefully(self.stream)
            raise ProtocolError(
                f"handshake did not finish within {timeout} s; the peer is stalled or not a SagaChain node"
            ) from None
        except ProtocolError as error:
            await self.refuse(error)
            raise
        except BaseException:  # cancelled from outside, or a bug: still never leak the connection
            await trio.aclose_forcefully(self.stream)
            raise

    def sign(self, role: str, version: int, transcript: bytes) -> HelloAck:
        return HelloAck(version=version, signature=self.key.sign(signed_message(role, version, transcript)))

    def check(self, ack: HelloAck, peer: Hello, role: str, version: int, transcript: bytes) -> None:
        if ack.version != version:
            raise ProtocolError(f"peer acknowledged version {ack.version}, but the highest common version is {version}")
        if not verify(peer.node_key, signed_message(role, version, transcript), ack.signature):
            raise ProtocolError(
                f"the {role}'s handshake signature does not verify under node key {peer.node_key.hex()}: "
                "the peer does not hold that key, or its handshake is not this one"
            )

    def channel(self, peer: Hello, version: int, transcript: bytes, role: str) -> Channel:
        try:
            shared = crypto_scalarmult(bytes(self.ephemeral), peer.ephemeral)
        except nacl.exceptions.RuntimeError:
            raise ProtocolError(
                "peer's ephemeral key is a low-order point (no shared secret); not a real peer"
            ) from None
        outgoing = session_key(f"{INITIATOR}->{RESPONDER}", shared, transcript)
        incoming = session_key(f"{RESPONDER}->{INITIATOR}", shared, transcript)
        if role == RESPONDER:
            outgoing, incoming = incoming, outgoing
        return Channel(
            peer=peer.node_key,
            version=version,
            _stream=self.stream,
            _reader=self.reader,
            _send_box=SecretBox(outgoing),
            _receive_box=SecretBox(incoming),
        )


async def connect(
    stream: trio.abc.Stream, key: KeyPair, expected: bytes | Callable[[bytes], str | None] | None = None, *,
    timeout: float = HANDSHAKE_TIMEOUT,
) -> Channel:
    """Open a channel as the initiator over ``stream`` (which the channel then owns).

    ``expected`` pins the responder's node key (MEM-5): another key is
    refused loudly, before this side signs anything. A node passes a judge
    instead (the key presented -> why it is refused, or None), because a key
    the roster records as a rotation of the pinned one is accepted. On any failure the
    stream is closed and :class:`ProtocolError` raised; a refusal by the
    responder is a :class:`PeerError` carrying its reason.
    """
    side = _Handshake(stream, key)

    async def steps() -> Channel:
        mine = await side.send(side.hello)
        peer, theirs = await side.receive(Hello)
        if callable(expected):
            problem = expected(peer.node_key)
        elif expected is not None and peer.node_key != expected:
            problem = (f"peer presented node key {peer.node_key.hex()}, but {expected.hex()} is pinned for it; "
                       "refusing: if the node rotated its key, the roster must record the rotation before the pin changes")
        else:
            problem = None
        if problem is not None:
            raise ProtocolError(problem, rule="MEM-5", code=PINNED_KEY)
        version = highest_common(VERSIONS, peer.versions)
        if version is None:
            raise ProtocolError(
                f"responder offered versions {list(peer.versions)}, none of ours {list(VERSIONS)}", code=VERSION
            )
        transcript = transcript_hash(mine, theirs)
        ack, _ = await side.receive(HelloAck)
        side.check(ack, peer, RESPONDER, version, transcript)
        session = side.channel(peer, version, transcript, INITIATOR)
        await side.send(side.sign(INITIATOR, version, transcript))
        return session

    return await side.run(steps, timeout)


async def accept(
    stream: trio.abc.Stream, key: KeyPair, authorize: Authorize | None = None, *, timeout: float = HANDSHAKE_TIMEOUT
) -> Channel:
    """Open a channel as the responder over ``stream`` (which the channel then owns).

    ``authorize(node_key)`` returns None to accept the initiator's node key,
    or the reason to refuse it, which the initiator receives in an Error
    message before the connection closes. The key it sees is the one the
    initiator claims; the channel exists only once the initiator has proven
    it with its signature. On failure the stream is closed and
    :class:`ProtocolError` raised.
    """
    side = _Handshake(stream, key)

    async def steps() -> Channel:
        peer, theirs = await side.receive(Hello)
        version = highest_common(VERSIONS, peer.versions)
        if version is None:
            raise ProtocolError(
                f"no common protocol version: you offer {list(peer.versions)}, this node speaks {list(VERSIONS)}",
                code=VERSION,
            )
        reason = authorize(peer.node_key) if authorize is not None else None
        if reason is not None:
            raise ProtocolError(f"node key {peer.node_key.hex()} refused: {reason}", code=REFUSED)
        mine = await side.send(side.hello)
        transcript = transcript_hash(theirs, mine)
        session = side.channel(peer, version, transcript, RESPONDER)
        await side.send(side.sign(RESPONDER, version, transcript))
        side.sealed = session
        ack, _ = await side.receive(HelloAck)
        side.check(ack, peer, INITIATOR, version, transcript)
        return session

    return await side.run(steps, timeout)
