"""The node's wire protocol (node/wire.py) and secure channel (node/channel.py).

Framing must survive any split of the bytes into reads and refuse bad
lengths without waiting or allocating; every message type must round-trip;
the handshake must prove both node keys, honour pinning (MEM-5) and refusals;
after it, a tampered, replayed or reordered frame must close the channel
(MEM-4). An initiator written from docs/PROTOCOL.md alone must get through,
and the document must list every message type. Last, a TCP server built on
the channel must shrug off garbage from any number of connections and keep
answering well-behaved clients.

pytest-trio is not used: each test runs its own ``trio.run``.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import blake3
import msgpack
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_scalarmult
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey, VerifyKey

import node.messages as v2
from node.channel import HANDSHAKE_FRAME, Channel, accept, connect
from shards import committee
from node.wire import (
    MAX_FRAME,
    MESSAGE_TYPES,
    PINNED_KEY,
    REFUSED,
    VERSION,
    AccountReply,
    BlockReply,
    ChannelClosed,
    ErrorMessage,
    Event,
    FrameReader,
    GetAccount,
    GetBlock,
    Hello,
    HelloAck,
    Message,
    PeerError,
    Ping,
    Pong,
    ProtocolError,
    SubmitTx,
    Subscribe,
    TxReceipt,
    decode_message,
    encode_message,
    frame,
    write_frame,
)
from sagachain.core.block import Block, BlockHeader, Head, ObjectUpdate, OpenEntry, ReleaseEntry, Vote, body_hash
from sagachain.core.encoding import ObjRef, encode
from sagachain.core.keys import KeyPair
from sagachain.core.objects import StoredObject, account_id_for, class_id_for
from sagachain.core.tx import make_transaction
from sagachain.core.wire import wire_fields

log = logging.getLogger(__name__)
DOC = Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md"

SERVER = KeyPair.derive("test-node-wire", "server")
CLIENT = KeyPair.derive("test-node-wire", "client")
STRANGER = KeyPair.derive("test-node-wire", "stranger")
HANDSHAKE_FRAMES_PER_SIDE = 2  # Hello, HelloAck: plaintext; everything after is sealed


# -- framing -----------------------------------------------------------------


async def _feed(stream: trio.abc.SendStream, data: bytes, cuts: list[int]) -> None:
    """Send ``data`` in pieces cut at ``cuts``, letting the reader drain each piece before the next."""
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        await stream.send_all(data[start:cut])
        await trio.testing.wait_all_tasks_blocked()
        start = cut
    await stream.aclose()


@settings(max_examples=60, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=200), min_size=1, max_size=6),
    cut_fractions=st.lists(st.floats(0, 1), max_size=30),
)
def test_frames_survive_any_split_into_reads(bodies: list[bytes], cut_fractions: list[float]) -> None:
    data = b"".join(frame(body) for body in bodies)
    cuts = [int(f * len(data)) for f in cut_fractions]

    async def main() -> list[bytes]:
        send, receive = trio.testing.memory_stream_one_way_pair()
        reader = FrameReader(receive)
        got = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_feed, send, data, cuts)
            for _ in bodies:
                got.append(await reader.read())
            with pytest.raises(ChannelClosed):
                await reader.read()
        return got

    assert trio.run(main) == bodies


def test_oversized_frame_is_refused_on_write() -> None:
    with pytest.raises(ProtocolError, match=r"frame of 11 bytes exceeds the limit of 10 bytes"):
        frame(b"x" * 11, limit=10)
    assert frame(b"x" * 10, limit=10)[:4] == b"\x00\x00\x00\x0a"


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    """The reader refuses at once, without waiting for (or allocating) the announced body."""

    async def main() -> None:
        send, receive = trio.testing.memory_stream_one_way_pair()
        await send.send_all((MAX_FRAME + 1).to_bytes(4, "big") + b"abc")
        refused = rf"{MAX_FRAME + 1} bytes, over the limit of {MAX_FRAME}"
        with trio.fail_after(1), pytest.raises(ProtocolError, match=refused):
            await FrameReader(receive).read()

    trio.run(main)


@pytest.mark.parametrize(
    ("data", "wanted"),
    [
        (b"\x00\x00", "2 of the 4 bytes of a frame header"),
        (b"\x00\x00\x00\x0aabc", "3 of the 10 bytes of a frame body"),
    ],
)
def test_truncated_frame_is_a_clear_error(data: bytes, wanted: str) -> None:
    async def main() -> None:
        send, receive = trio.testing.memory_stream_one_way_pair()
        await send.send_all(data)
        await send.aclose()
        with trio.fail_after(1), pytest.raises(ProtocolError, match=f"closed mid-frame: got {wanted}"):
            await FrameReader(receive).read()

    trio.run(main)


# -- messages ----------------------------------------------------------------


def _block() -> Block:
    alice, bob = account_id_for("alice"), account_id_for("bob")
    tx = make_transaction(
        key=CLIENT, sender=alice, nonce=1, gas_limit=1000, gas_payer=alice, accounts={"to": bob}, script="to.deposit(1)"
    )
    value = StoredObject(class_id=class_id_for("Wallet"), owner=bob, fields={"received": 1, "ref": ObjRef(alice)})
    entries = (
        OpenEntry(
            tx=tx,
            ok=True,
            error=None,
            gas_used=7,
            fee=7,
            tax=1,
            updates=(ObjectUpdate(id=bob, value=value),),
            log=("ok",),
        ),
        ReleaseEntry(account=alice, to_shard="public-1", state_hash=b"\x01" * 32, nonce=2),
    )
    header = BlockHeader(
        chain=b"\x02" * 32,
        shard="public-0",
        height=3,
        parent=b"\x03" * 32,
        time=1000,
        producer=SERVER.public,
        committee=b"\x04" * 32,
        body=body_hash(entries),
        gas_floor=5,
        gas_basis=(Head(shard="public-1", height=2),),
        coinbase=10,
        fees=7,
        tax=1,
    )
    return Block(header=header, entries=entries, qc=(Vote(signer=SERVER.public, signature=b"\x05" * 64),))


def _one_of_each() -> list[Message]:
    block = _block()
    entry = block.tx_entries()[0]
    assert isinstance(entry, OpenEntry)
    tx, value = entry.tx, entry.updates[0].value
    return [
        Hello(versions=(1, 2), node_key=SERVER.public, ephemeral=b"\x06" * 32, nonce=b"\x07" * 32),
        HelloAck(version=1, signature=b"\x08" * 64),
        ErrorMessage(code=REFUSED, reason="not on the roster", rule="MEM-1"),
        Ping(seq=0),
        Pong(seq=2**64 - 1),
        SubmitTx(tx=tx),
        TxReceipt(tx=tx.id, accepted=False, reason="nonce 1 already used", rule="TX-1"),
        GetAccount(account=account_id_for("bob")),
        AccountReply(account=account_id_for("bob"), shard="public-0", height=3, value=value, nonce=4),
        AccountReply(account=account_id_for("acme"), shard=None, height=0, value=None, nonce=0),
        GetBlock(shard="public-0", height=3),
        BlockReply(shard="public-0", height=3, block=block),
        BlockReply(shard="public-0", height=4, block=None),
        Subscribe(topics=("block:public-0", "tx:" + tx.id.hex())),
        Event(topic="block:public-0", seq=0, data={"height": 3, "hash": block.hash}),
        *_one_of_each_v2(block, tx),
    ]


def _one_of_each_v2(block: Block, tx: Any) -> list[Message]:
    """Version 2 (section 8): the messages between nodes and the later client reads."""
    unsigned = Block(header=block.header, entries=block.entries, qc=())
    proposal = committee.Proposal(shard="public-0", height=3, round=1, block=unsigned, valid_round=-1,
                                  producer_vote=b"\x01" * 64, signature=b"\x02" * 64)
    prevote = committee.Prevote(shard="public-0", height=3, round=1, block_hash=committee.NIL, signer=b"\x03" * 32, signature=b"\x04" * 64)
    return [
        v2.Consensus(body=proposal),
        v2.Consensus(body=prevote),
        v2.Consensus(body=committee.Decision(shard="public-0", block=block)),
        v2.ForwardTx(tx=tx),
        v2.FinalBlock(block=block),
        v2.GetBlocks(shard="public-0", from_height=4, limit=64),
        v2.Blocks(shard="public-0", blocks=(block,)),
        v2.L2LRequest(account=account_id_for("bob"), requester="public-1", arrived=1_700, tx_id=tx.id),
        v2.GetEnclaveState(enclave="acme"),
        v2.EnclaveState(enclave="acme", heads={"acme/0": 2}, epoch=3, sealed=b"\x07" * 40),
        v2.GetObject(id=account_id_for("bob")),
        v2.GetObjects(account=account_id_for("bob"), after=b"\x01" * 32, limit=10),
        v2.ObjectsReply(account=account_id_for("bob"), objects={b"\x02" * 32: StoredObject(class_id=b"\x03" * 32, owner=account_id_for("bob"), fields={"n": 1})}, more=True),
        v2.ObjectReply(id=account_id_for("bob"), value=None),
        v2.GetReceipt(tx=tx.id),
        v2.Receipt(tx=tx.id, status="final", shard="public-0", height=3, index=0, ok=True, rule=None, reason=None),
        v2.GetStatus(),
        v2.Status(data={"name": "n1", "pending": 0}),
    ]


def test_every_message_type_round_trips() -> None:
    messages = _one_of_each()
    assert {m.TYPE for m in messages} == set(MESSAGE_TYPES), "give each new message type an example here"
    for msg in messages:
        body = encode_message(msg)
        again = decode_message(body)
        assert again == msg, msg.TYPE
        assert encode_message(again) == body


def test_a_received_block_keeps_its_hash_and_transaction_ids() -> None:
    block = _block()
    again = decode_message(encode_message(BlockReply(shard="public-0", height=3, block=block)))
    assert isinstance(again, BlockReply) and again.block is not None
    assert again.block.hash == block.hash
    assert again.block.tx_entries()[0].tx.id == block.tx_entries()[0].tx.id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (encode({"type": "block_proposal", "x": 1}), r"unknown message type 'block_proposal'; known types: .*ping"),
        (encode([1, 2]), r"a map with a 'type' string, got list"),
        (encode({"seq": 1}), r"a map with a 'type' string"),
        (encode({"type": "ping"}), r"bad 'ping' message: .*missing \['seq'\]"),
        (encode({"type": "ping", "seq": "one"}), r"expected an int"),
        (encode({"type": "ping", "seq": 1, "extra": 2}), r"unknown \['extra'\]"),
        (b"\x82\xa4type\xa4ping\xa3seq\x01", r"not canonical"),  # "type" before the shorter "seq"
        (b"\xc1", r"not one MessagePack value"),
        (b"", r"not one MessagePack value"),
        (encode({"type": "ping", "seq": 1}) + b"\x00", r"not one MessagePack value"),
        (b"\xcb" + b"\x00" * 8, r"not canonical.*no floats"),
        (b"\x91" * 900 + b"\x80", r"nests deeper than 64"),  # decodes, but deeper than any message
        (b"\x91" * 3000, r"not one MessagePack value"),  # nested deeper than the decoder goes
        (encode({"type": "hello", "versions": [], "node_key": b"", "ephemeral": b"", "nonce": b""}), r"versions must be"),
    ],
)
def test_bad_message_bodies_are_named(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_message(body)


def test_an_error_where_another_message_was_expected_is_the_peers_refusal() -> None:
    body = encode_message(ErrorMessage(code=REFUSED, reason="not on the roster", rule=None))
    with pytest.raises(PeerError, match="not on the roster") as raised:
        decode_message(body, Hello)
    assert raised.value.code == REFUSED
    with pytest.raises(ProtocolError, match="expected a 'hello' message here, got 'ping'"):
        decode_message(encode_message(Ping(seq=1)), Hello)


# -- handshake ---------------------------------------------------------------


async def _both(
    client_stream: trio.abc.Stream,
    server_stream: trio.abc.Stream,
    *,
    expected: bytes | None = None,
    authorize: Callable[[bytes], str | None] | None = None,
) -> tuple[Channel | ProtocolError, Channel | ProtocolError]:
    """Run both sides of a handshake at once; each result is its channel or its error."""
    results: dict[str, Channel | ProtocolError] = {}

    async def side(name: str, opening: Awaitable[Channel]) -> None:
        try:
            results[name] = await opening
        except ProtocolError as exc:
            results[name] = exc

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "client", connect(client_stream, CLIENT, expected))
            nursery.start_soon(side, "server", accept(server_stream, SERVER, authorize))
    return results["client"], results["server"]


def test_handshake_proves_both_keys_and_carries_messages_both_ways() -> None:
    async def main() -> None:
        client, server = await _both(*trio.testing.memory_stream_pair(), expected=SERVER.public)
        assert isinstance(client, Channel) and isinstance(server, Channel)
        assert client.peer == SERVER.public and server.peer == CLIENT.public
        assert client.version == server.version == 2
        for seq in range(3):
            await client.send(Ping(seq=seq))
            assert await server.receive() == Ping(seq=seq)
            await server.send(Pong(seq=seq))
            assert await client.receive() == Pong(seq=seq)
        await client.aclose()
        with pytest.raises(ChannelClosed):
            await server.receive()

    trio.run(main)


def test_handshake_over_tcp_without_a_pin() -> None:
    async def main() -> None:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with listener, trio.open_nursery() as nursery:
            accepted: list[Channel] = []

            async def serve_one() -> None:
                accepted.append(await accept(await listener.accept(), SERVER))

            nursery.start_soon(serve_one)
            port = listener.socket.getsockname()[1]
            async with await connect(await trio.open_tcp_stream("127.0.0.1", port), CLIENT) as client:
                await client.send(Subscribe(topics=("block:public-0",)))
                await trio.testing.wait_all_tasks_blocked()
                (server,) = accepted
                assert await server.receive() == Subscribe(topics=("block:public-0",))
                await server.send(Event(topic="block:public-0", seq=0, data={"height": 1}))
                assert await client.receive() == Event(topic="block:public-0", seq=0, data={"height": 1})
                await server.aclose()

    trio.run(main)


def test_a_changed_node_key_is_refused_loudly() -> None:
    async def main() -> None:
        client, server = await _both(*trio.testing.memory_stream_pair(), expected=STRANGER.public)
        assert isinstance(client, ProtocolError) and not isinstance(client, PeerError)
        assert client.rule == "MEM-5" and client.code == PINNED_KEY
        assert SERVER.public.hex() in str(client) and STRANGER.public.hex() in str(client)
        assert isinstance(server, PeerError) and server.code == PINNED_KEY

    trio.run(main)


def test_authorize_refusal_reaches_the_initiator_with_its_reason() -> None:
    seen: list[bytes] = []

    def authorize(node_key: bytes) -> str | None:
        seen.append(node_key)
        return "not a MEMBER of enclave acme's roster (MEM-1); ask an admin to approve your application"

    async def main() -> None:
        client, server = await _both(*trio.testing.memory_stream_pair(), authorize=authorize)
        assert isinstance(client, PeerError) and client.code == REFUSED
        assert "ask an admin to approve" in str(client)
        assert isinstance(server, ProtocolError) and server.code == REFUSED

    trio.run(main)
    assert seen == [CLIENT.public]


def test_authorize_accepting_lets_the_channel_open() -> None:
    async def main() -> None:
        client, server = await _both(*trio.testing.memory_stream_pair(), authorize=lambda key: None)
        assert isinstance(client, Channel) and isinstance(server, Channel)

    trio.run(main)


def test_no_common_version_is_answered_with_an_error_then_close() -> None:
    async def main() -> None:
        raw, server_stream = trio.testing.memory_stream_pair()
        hello = Hello(versions=(7, 9), node_key=CLIENT.public, ephemeral=b"\x09" * 32, nonce=b"\x0a" * 32)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_frame, raw, encode_message(hello))
            with pytest.raises(ProtocolError, match="no common protocol version") as raised:
                await accept(server_stream, SERVER)
        assert raised.value.code == VERSION
        reader = FrameReader(raw)
        answer = decode_message(await reader.read())
        assert isinstance(answer, ErrorMessage) and answer.code == VERSION
        assert "you offer [7, 9], this node speaks [2]" in answer.reason
        with pytest.raises(ChannelClosed):
            await reader.read()

    trio.run(main)


def test_a_stalled_peer_is_dropped_after_the_handshake_timeout() -> None:
    async def main() -> None:
        _client_stream, server_stream = trio.testing.memory_stream_pair()
        with trio.fail_after(2), pytest.raises(ProtocolError, match=r"handshake did not finish within 0.1 s"):
            await accept(server_stream, SERVER, timeout=0.1)

    trio.run(main)


# -- after the handshake: a relay in the middle -------------------------------

Mangle = Callable[[int, bytes], list[bytes]]


async def _relay(source: trio.abc.Stream, sink: trio.abc.Stream, mangle: Mangle, seen: list[bytes]) -> None:
    """Forward frames from ``source`` to ``sink``; sealed frames (after the handshake) go through ``mangle``."""
    reader = FrameReader(source)
    index = 0
    try:
        while True:
            body = await reader.read()
            seen.append(body)
            if index < HANDSHAKE_FRAMES_PER_SIDE:
                out = [body]
            else:
                out = mangle(index - HANDSHAKE_FRAMES_PER_SIDE, body)
            index += 1
            for piece in out:
                await write_frame(sink, piece)
    except (ProtocolError, trio.ClosedResourceError):  # an end hung up, or the other relay closed our source
        await sink.aclose()


async def _through_relay(mangle: Mangle, seen: list[bytes], nursery: trio.Nursery) -> tuple[Channel, Channel]:
    """A client and server channel whose client-to-server frames pass through ``mangle``."""
    client_stream, relay_in = trio.testing.memory_stream_pair()
    relay_out, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(_relay, relay_in, relay_out, mangle, seen)
    nursery.start_soon(_relay, relay_out, relay_in, lambda i, body: [body], [])
    client, server = await _both(client_stream, server_stream)
    assert isinstance(client, Channel) and isinstance(server, Channel)
    return client, server


def _flip_last_byte(index: int, body: bytes) -> list[bytes]:
    return [body[:-1] + bytes([body[-1] ^ 1])] if index == 1 else [body]


def _replay_first(index: int, body: bytes) -> list[bytes]:
    return [body, body] if index == 0 else [body]


def _swap_first_two() -> Mangle:
    held: list[bytes] = []

    def mangle(index: int, body: bytes) -> list[bytes]:
        if index == 0:
            held.append(body)
            return []
        return [body, *held] if index == 1 else [body]

    return mangle


@pytest.mark.parametrize(
    ("make", "good"),
    [(lambda: _flip_last_byte, 1), (lambda: _replay_first, 1), (_swap_first_two, 0)],
    ids=["tampered", "replayed", "reordered"],
)
def test_a_tampered_replayed_or_reordered_frame_closes_the_channel(make: Callable[[], Mangle], good: int) -> None:
    """``good`` frames arrive intact before the first bad one; the channel refuses that one and closes."""
    mangle = make()

    async def main() -> None:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                client, server = await _through_relay(mangle, [], nursery)
                for seq in range(3):
                    await client.send(Ping(seq=seq))
                for seq in range(good):
                    assert await server.receive() == Ping(seq=seq)
                with pytest.raises(ProtocolError, match=f"frame {good} from the peer does not decrypt") as raised:
                    await server.receive()
                assert raised.value.rule == "MEM-4"
                with pytest.raises(trio.ClosedResourceError):
                    await server.receive()
                await client.aclose()

    trio.run(main)


def test_sealed_frames_show_no_plaintext() -> None:
    secret = "acme-balance-9137"

    async def main() -> list[bytes]:
        seen: list[bytes] = []
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                client, server = await _through_relay(lambda i, body: [body], seen, nursery)
                await client.send(Event(topic="enclave:acme", seq=0, data={"state": secret}))
                assert await server.receive() == Event(topic="enclave:acme", seq=0, data={"state": secret})
                await client.aclose()
        return seen

    frames = trio.run(main)
    assert len(frames) == HANDSHAKE_FRAMES_PER_SIDE + 1
    assert all(secret.encode() not in body for body in frames)


def test_a_message_over_the_frame_limit_is_refused_before_sending() -> None:
    async def main() -> None:
        client, server = await _both(*trio.testing.memory_stream_pair())
        assert isinstance(client, Channel) and isinstance(server, Channel)
        with pytest.raises(ProtocolError, match=r"'event' message of \d+ bytes exceeds the limit"):
            await client.send(Event(topic="t", seq=0, data=b"x" * MAX_FRAME))
        await client.send(Ping(seq=1))  # nothing was sent, the counters still agree
        assert await server.receive() == Ping(seq=1)

    trio.run(main)


# -- docs/PROTOCOL.md is enough: an initiator written from it alone ------------
#
# Only msgpack, blake3 and pynacl below, never node.wire or sagachain.core.


def _doc_pack(value: Any) -> bytes:
    """Canonical MessagePack for the handshake's values: str-keyed maps sorted by (length, bytes)."""
    if isinstance(value, dict):
        value = dict(sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode())))
    return msgpack.packb(value, use_bin_type=True)


def _doc_h(value: Any) -> bytes:
    return blake3.blake3(_doc_pack(value)).digest()


async def _doc_read(stream: trio.abc.Stream, buffer: bytearray) -> bytes:
    while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">I", buffer[:4])[0]:
        chunk = await stream.receive_some()
        assert chunk, "connection closed mid-frame"
        buffer += chunk
    size = struct.unpack(">I", buffer[:4])[0]
    body = bytes(buffer[4 : 4 + size])
    del buffer[: 4 + size]
    return body


async def _doc_initiator(stream: trio.abc.Stream, signing: SigningKey, *, own_role: str) -> Any:
    """Handshake as section 4 says, send a sealed Ping, and return the first sealed message received."""
    buffer = bytearray()
    ephemeral = PrivateKey.generate()
    hello_i = _doc_pack(
        {
            "type": "hello",
            "versions": [2],
            "node_key": bytes(signing.verify_key),
            "ephemeral": bytes(ephemeral.public_key),
            "nonce": bytes(32),
        }
    )
    await stream.send_all(struct.pack(">I", len(hello_i)) + hello_i)
    hello_r = await _doc_read(stream, buffer)
    ack_r = msgpack.unpackb(await _doc_read(stream, buffer))
    hello = msgpack.unpackb(hello_r)
    transcript = _doc_h(["sagachain-handshake", blake3.blake3(hello_i).digest(), blake3.blake3(hello_r).digest()])
    assert ack_r["type"] == "hello_ack" and ack_r["version"] == 2
    signed = _doc_h(["sagachain-handshake-signature", "responder", 2, transcript])
    VerifyKey(hello["node_key"]).verify(signed, ack_r["signature"])
    signature = signing.sign(_doc_h(["sagachain-handshake-signature", own_role, 2, transcript])).signature
    ack_i = _doc_pack({"type": "hello_ack", "version": 2, "signature": signature})
    await stream.send_all(struct.pack(">I", len(ack_i)) + ack_i)
    shared = crypto_scalarmult(bytes(ephemeral), hello["ephemeral"])
    i2r = _doc_h(["sagachain-session-key", "initiator->responder", shared, transcript])
    r2i = _doc_h(["sagachain-session-key", "responder->initiator", shared, transcript])
    sealed = SecretBox(i2r).encrypt(_doc_pack({"type": "ping", "seq": 7}), (0).to_bytes(24, "big")).ciphertext
    await stream.send_all(struct.pack(">I", len(sealed)) + sealed)
    return msgpack.unpackb(SecretBox(r2i).decrypt(await _doc_read(stream, buffer), (0).to_bytes(24, "big")))


@pytest.mark.parametrize("own_role", ["initiator", "responder"])
def test_an_initiator_written_from_the_document_alone(own_role: str) -> None:
    """With the right role the node answers the Ping; signing as the wrong role gets a sealed Error."""
    signing = SigningKey(bytes(range(32)))

    async def serve(stream: trio.abc.Stream) -> None:
        try:
            channel = await accept(stream, SERVER)
        except ProtocolError:
            return
        msg = await channel.receive()
        assert isinstance(msg, Ping)
        await channel.send(Pong(seq=msg.seq))

    async def main() -> Any:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve, server_stream)
                return await _doc_initiator(client_stream, signing, own_role=own_role)

    answer = trio.run(main)
    if own_role == "initiator":
        assert answer == {"type": "pong", "seq": 7}
    else:
        assert answer["type"] == "error" and answer["code"] == "protocol"
        assert "initiator's handshake signature does not verify" in answer["reason"]


def test_the_document_lists_every_message_type_and_field() -> None:
    text = DOC.read_text()
    for name, cls in MESSAGE_TYPES.items():
        assert f'`"{name}"`' in text, f"docs/PROTOCOL.md does not describe message type {name!r}"
        missing = [field for field in wire_fields(cls) if f"`{field}`" not in text]
        assert not missing, f"docs/PROTOCOL.md does not describe {name!r} fields {missing}"


def test_the_documents_ping_example_is_what_the_code_writes() -> None:
    text = DOC.read_text()
    block = text.split("Example: `Ping{seq: 1}`", 1)[1].split("```")[1]
    written = []
    for line in block.splitlines():
        for token in line.split():
            if not re.fullmatch(r"[0-9a-f]{2}", token):
                break
            written.append(token)
    assert bytes.fromhex("".join(written)) == frame(encode_message(Ping(seq=1)))


# -- a server under garbage ----------------------------------------------------


async def _ping_server(
    listeners: list[trio.SocketListener], drops: list[ProtocolError], *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """A tiny node: handshake, then answer each Ping with a Pong; drop bad connections with a log line."""

    async def handle(stream: trio.SocketStream) -> None:
        try:
            async with await accept(stream, SERVER, timeout=2) as channel:
                async for msg in channel:
                    if isinstance(msg, Ping):
                        await channel.send(Pong(seq=msg.seq))
        except ProtocolError as exc:
            log.info("dropped a connection: %s", exc)
            drops.append(exc)

    await trio.serve_listeners(handle, listeners, task_status=task_status)


async def _send_garbage(port: int, data: bytes, after_handshake: bool) -> None:
    """Connect, optionally handshake properly, send ``data`` raw, then wait for the server to hang up."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        if after_handshake:
            await connect(stream, CLIENT, SERVER.public)
        await stream.send_all(data)
        await stream.send_eof()
        while await stream.receive_some():
            pass
    except trio.BrokenResourceError:
        pass  # the server hung up while we were still sending: that is a drop too
    finally:
        await stream.aclose()


async def _ping(port: int, seq: int) -> None:
    async with await connect(await trio.open_tcp_stream("127.0.0.1", port), CLIENT, SERVER.public) as channel:
        await channel.send(Ping(seq=seq))
        assert await channel.receive() == Pong(seq=seq)


_fake_hello = st.builds(
    Hello,
    versions=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
    node_key=st.binary(min_size=32, max_size=32),
    ephemeral=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=32, max_size=32),
).map(lambda hello: frame(encode_message(hello)))
_typed_map = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(MESSAGE_TYPES))},
    optional={"seq": st.integers(0, 10), "versions": st.lists(st.integers(0, 5)), "node_key": st.binary(max_size=40)},
).map(lambda fields: frame(encode(fields)))
_junk = st.one_of(
    st.binary(max_size=300),  # raw bytes: usually an absurd length
    st.binary(max_size=300).map(frame),  # well-framed, anything inside
)
_forged_ack = st.builds(HelloAck, version=st.just(1), signature=st.binary(min_size=64, max_size=64))
_garbage = st.one_of(
    _junk,
    _typed_map,  # well-framed, canonical, a known type with wrong fields
    st.tuples(_fake_hello, st.one_of(_junk, _forged_ack.map(lambda ack: frame(encode_message(ack))))).map(b"".join),
)
_connection = st.one_of(
    st.tuples(_garbage, st.just(False)),
    st.tuples(_junk.filter(bool), st.just(True)),  # junk where sealed frames should be
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connections=st.lists(_connection, min_size=1, max_size=4))
def test_a_server_survives_garbage_and_keeps_answering(connections: list[tuple[bytes, bool]]) -> None:
    drops: list[ProtocolError] = []

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(_ping_server, listeners, drops)
                await _ping(port, 0)
                for seq, (data, after_handshake) in enumerate(connections, start=1):
                    await _send_garbage(port, data, after_handshake)
                    await _ping(port, seq)
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert len(drops) == len(connections), [str(d) for d in drops]


def test_handshake_frames_stay_small() -> None:
    """The handshake limit leaves room for a Hello with every version a peer may offer."""
    hello = Hello(versions=tuple(range(1, 17)), node_key=b"\x00" * 32, ephemeral=b"\x00" * 32, nonce=b"\x00" * 32)
    assert len(encode_message(hello)) < HANDSHAKE_FRAME
