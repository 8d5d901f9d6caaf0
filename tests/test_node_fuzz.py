"""A running node survives malformed input and keeps serving a well-behaved client.

Hypothesis throws at a real node process: random bytes, lengths over the
frame limit, truncated frames, handshakes that are not canonical or not
signed, and, after a genuine handshake, sealed frames that do not decrypt,
unknown message types and messages between nodes from a client. After every
example a well-behaved client still gets its answer, and at the end the
node's log names what it dropped and its metrics count it.
"""

from __future__ import annotations

import struct
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio
from hypothesis import HealthCheck, given, settings, strategies as st

from node.channel import connect
from node.client import open_client
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from node.messages import FinalBlock
from node.wire import MAX_FRAME, PeerError, Ping, ProtocolError, frame
from sagachain.core.encoding import encode
from sagachain.core.keys import KeyPair

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("fuzz") / "dn"
    write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=1, accounts=2, enclave_accounts=0, seed=2)), root)
    record = load_record(root)
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        node = dict(record["nodes"][0])
        node["root"] = root
        yield node
    finally:
        stop_devnet(root)


async def _raw(address: str, data: bytes) -> None:
    """Send ``data`` on a fresh connection, read whatever comes back for a moment, close."""
    host, port = address.rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        with trio.move_on_after(0.3):
            await stream.send_all(data)
            while await stream.receive_some(65536):
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def _sealed_garbage(address: str, body: bytes, kind: str) -> None:
    """A genuine handshake, then garbage inside the channel."""
    host, port = address.rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        channel = await connect(stream, KeyPair.derive("fuzz", kind, body))
        with trio.move_on_after(0.3):
            if kind == "undecryptable":
                await stream.send_all(frame(body + b"\x00" * 16))
            elif kind == "unknown-type":
                await channel.send(Ping(seq=1))  # a fine message first
                await stream.send_all(frame(body))  # then one not sealed at all
            else:  # a message between nodes, from a client
                from sagachain.core.block import Block, BlockHeader

                header = BlockHeader(chain=b"c" * 32, shard="P0", height=1, parent=b"p" * 32, time=0, producer=b"x" * 32,
                                     committee=b"y" * 32, body=b"z" * 32, gas_floor=0, gas_basis=(), coinbase=0, fees=0, tax=0)
                await channel.send(FinalBlock(block=Block(header=header, entries=(), qc=())))
            while True:
                await channel.receive()
    except Exception:  # noqa: BLE001 - the node is expected to drop us in any of several ways
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def _served(address: str) -> None:
    async with open_client(address, timeout=10) as client:
        status = await client.status()
        assert status.data["name"] == "P0-n0"


frames = st.one_of(
    st.binary(max_size=256),
    st.binary(max_size=64).map(lambda b: struct.pack(">I", len(b) + 10) + b),  # truncated
    st.integers(MAX_FRAME + 1, 2**32 - 1).map(lambda n: struct.pack(">I", n)),  # oversized
    st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1), max_size=4).map(lambda d: frame(encode({"type": "hello", **d}))),
    st.binary(max_size=64).map(frame),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=frames)
def test_garbage_before_the_handshake_never_stops_the_node(node: dict[str, Any], data: bytes) -> None:
    async def main() -> None:
        await _raw(node["address"], data)
        await _served(node["address"])

    trio.run(main)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(min_size=1, max_size=128), kind=st.sampled_from(["undecryptable", "unknown-type", "node-message"]))
def test_garbage_inside_a_channel_is_dropped_and_others_are_still_served(node: dict[str, Any], body: bytes, kind: str) -> None:
    async def main() -> None:
        await _sealed_garbage(node["address"], body, kind)
        await _served(node["address"])

    trio.run(main)


def test_a_key_that_keeps_breaking_the_protocol_is_backed_off(node: dict[str, Any]) -> None:
    async def main() -> None:
        key = KeyPair.derive("fuzz", "repeat offender")
        for _ in range(3):
            host, port = node["address"].rsplit(":", 1)
            channel = await connect(await trio.open_tcp_stream(host, int(port)), key)
            await channel._stream.send_all(frame(b"not sealed"))
            with trio.move_on_after(2), pytest.raises(ProtocolError):
                while True:
                    await channel.receive()
        host, port = node["address"].rsplit(":", 1)
        with pytest.raises(PeerError, match="backed off"):
            await connect(await trio.open_tcp_stream(host, int(port)), key)
        await _served(node["address"])  # everyone else is still welcome

    trio.run(main)


def test_the_node_says_what_it_dropped(node: dict[str, Any]) -> None:
    trio.run(_sealed_garbage, node["address"], b"\x01\x02", "node-message")
    log = (Path(node["root"]) / node["dir"] / "node.log").read_text()
    assert "dropping client" in log and "is a message between nodes" in log
    assert "during the handshake" in log
    if node.get("metrics"):
        text = urllib.request.urlopen(f"http://{node['metrics']}/metrics", timeout=5).read().decode()
        assert "sagachain_frames_dropped_total" in text
