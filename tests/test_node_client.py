"""The client side of the node protocol (node/client.py) and the ``sagachain tx`` commands.

The node answers requests in order and pushes Events in between; the client
must pair every reply with its request and every Event with its
subscription, whatever the interleaving. These tests run the client against
``FakeNode``, a small responder on the real channel (``node.channel.accept``)
over real TCP on 127.0.0.1, which interleaves Events with its replies on
purpose, refuses some requests with an Error of code "request", and can
break the connection. The CLI tests run the same responder in a thread and
the commands through click's runner.

pytest-trio is not used: each test runs its own ``trio.run``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from click.testing import CliRunner

from node import client as client_module
from node.channel import accept
from node.client import (
    Address,
    ConnectionLost,
    NodeUnreachable,
    SubscriptionOverflow,
    open_client,
    wait_final,
)
from node.messages import GetObject, GetReceipt, GetStatus, ObjectReply, Receipt, Status
from node.wire import (
    AccountReply,
    BlockReply,
    ErrorMessage,
    Event,
    GetAccount,
    GetBlock,
    Message,
    PeerError,
    Ping,
    Pong,
    SubmitTx,
    Subscribe,
    TxReceipt,
)
from sagachain.cli import main
from sagachain.core.keys import KeyPair
from sagachain.core.objects import account_id_for
from sagachain.core.tx import Transaction, make_transaction
from sagachain.errors import InputError

NODE_KEY = KeyPair.derive("test-node-client", "node")
ALICE = KeyPair.derive("test-node-client", "alice")
ALICE_ID = account_id_for("alice")
BOB_ID = account_id_for("bob")
REFUSED_OBJECT = b"\x0f" * 32  # GetObject of this id is refused with code "request"
FATAL_SHARD = "fatal"  # GetBlock of this shard gets a connection-level Error, then the node hangs up
STATUS_DATA = {"node": "n1", "shards": {"P0": {"height": 7, "queue": 2}}, "peers": ["127.0.0.1:7102"], "enclaves": ["acme"], "pending": 2}


def transaction(nonce: int = 1, script: str = "a.pay(b, 1)") -> Transaction:
    return make_transaction(key=ALICE, sender=ALICE_ID, nonce=nonce, gas_limit=10_000, gas_payer=ALICE_ID, accounts={"a": ALICE_ID, "b": BOB_ID}, script=script)


@dataclass
class FakeNode:
    """A responder that answers in order and, once subscribed, interleaves Events with its replies.

    On SubmitTx it sends an unrelated block Event, then the receipt, then the
    block Event that holds the transaction (when "blocks" is subscribed): a
    client that mixed up Events and replies fails at once. ``flood`` Events
    go out right after a Subscribe; ``ping_client`` makes it ping the client
    before answering GetStatus.
    """

    flood: int = 0
    ping_client: bool = False
    hold_blocks: bool = False  # never publish the block of a transaction (a --wait that times out)
    status_delay: float = 0.0  # seconds before answering GetStatus (a request cancelled while waiting)
    last_nonce: int = 0  # what GetAccount reports as the account's last final nonce
    submitted: dict[bytes, Transaction] = field(default_factory=dict)
    pongs: list[int] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    port: int = 0

    async def serve(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, stream: trio.SocketStream) -> None:
        channel = await accept(stream, NODE_KEY)
        topics: set[str] = set()
        seq = iter(range(1_000_000))
        height = iter(range(1, 1_000_000))

        async def publish(topic: str, data: Any) -> None:
            if topic in topics:
                await channel.send(Event(topic=topic, seq=next(seq), data=data))

        async with channel:
            async for msg in channel:
                self.seen.append(msg.TYPE)
                if isinstance(msg, Subscribe):
                    topics.update(msg.topics)
                    for i in range(self.flood):
                        await publish("blocks", block_event(next(height), []))
                elif isinstance(msg, SubmitTx):
                    self.submitted[msg.tx.id] = msg.tx
                    await publish("blocks", block_event(next(height), []))
                    await channel.send(TxReceipt(tx=msg.tx.id, accepted="refuse" not in msg.tx.script, reason=None, rule=None))
                    await publish("transfers", {"account": ALICE_ID, "from": "P0", "to": "P1", "shard": "P0", "height": 1, "stage": "release"})
                    if not self.hold_blocks:
                        await publish("blocks", block_event(next(height), [msg.tx.id], ok="fail" not in msg.tx.script))
                elif isinstance(msg, GetStatus):
                    await trio.sleep(self.status_delay)
                    if self.ping_client:
                        await channel.send(Ping(seq=99))
                    await publish("roster", {"enclave": "acme", "node": NODE_KEY.public, "change": "joined", "reason": None})
                    await channel.send(Status(data=STATUS_DATA))
                elif isinstance(msg, Pong):
                    self.pongs.append(msg.seq)
                elif isinstance(msg, Ping):
                    await channel.send(Pong(seq=msg.seq))
                elif isinstance(msg, GetReceipt):
                    await channel.send(self._receipt(msg.tx))
                elif isinstance(msg, GetAccount):
                    await channel.send(AccountReply(account=msg.account, shard="P0", height=2, value=None, nonce=self.last_nonce))
                elif isinstance(msg, GetObject):
                    if msg.id == REFUSED_OBJECT:
                        await channel.send(ErrorMessage(code="request", reason="no such object here; try another node", rule=None))
                    else:
                        await channel.send(ObjectReply(id=msg.id, value=None))
                elif isinstance(msg, GetBlock):
                    if msg.shard == FATAL_SHARD:
                        await channel.send(ErrorMessage(code="protocol", reason="the node is shutting down", rule=None))
                        return
                    await channel.send(BlockReply(shard=msg.shard, height=msg.height, block=None))

    def _receipt(self, tx_id: bytes) -> Receipt:
        if tx_id in self.submitted:
            return Receipt(tx=tx_id, status="pending" if self.hold_blocks else "final", shard="P0", height=2, index=0, ok=True, rule=None, reason=None)
        return Receipt(tx=tx_id, status="unknown", shard=None, height=0, index=0, ok=None, rule=None, reason=None)


def block_event(height: int, txs: list[bytes], ok: bool = True) -> dict[str, Any]:
    return {"shard": "P0", "height": height, "hash": bytes([height % 256]) * 32, "time": 500 * height, "txs": txs, "ok": [ok] * len(txs)}


def with_node(test: Callable[[FakeNode, trio.Nursery], Awaitable[None]], node: FakeNode | None = None) -> None:
    """Run ``test`` against a fresh FakeNode in one trio run, with a deadline so a hang fails."""
    fake = node or FakeNode()

    async def main_task() -> None:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(fake.serve)
                await test(fake, nursery)
                nursery.cancel_scope.cancel()

    trio.run(main_task)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- requests and events --------------------------------------------------------------


def test_replies_and_events_are_routed_apart() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address, expected=NODE_KEY.public) as client:
            assert client.node_key == NODE_KEY.public
            tx = transaction()
            async with client.subscribe(["blocks"]) as events:
                receipt = await client.submit(tx)
                assert receipt == TxReceipt(tx=tx.id, accepted=True, reason=None, rule=None)
                status = await client.status()  # the roster event before it is not subscribed: dropped
                assert status.data == STATUS_DATA
                first = await events.__anext__()
                data, index = await wait_final(events, tx.id)
            assert first.topic == "blocks" and first.data["txs"] == []
            assert (data["height"], index, data["ok"]) == (2, 0, [True])
            assert (await client.receipt(tx.id)).status == "final"

    with_node(test)


def test_concurrent_requests_each_get_their_own_reply() -> None:
    """Many tasks asking at once, with events in between: each reply reaches its asker."""

    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        results: dict[str, Message] = {}
        async with open_client(fake.address) as client:
            await client.subscribe(["blocks", "transfers", "roster"]).start()

            async def ask(name: str, request: Callable[[], Awaitable[Message]]) -> None:
                results[name] = await request()

            async with trio.open_nursery() as nursery:
                for i in range(5):
                    tx = transaction(nonce=i + 1)
                    nursery.start_soon(ask, f"submit{i}", lambda tx=tx: client.submit(tx))
                    nursery.start_soon(ask, f"status{i}", client.status)
                    nursery.start_soon(ask, f"object{i}", lambda i=i: client.object(bytes([i]) * 32))
        for i in range(5):
            assert isinstance(results[f"status{i}"], Status)
            assert results[f"object{i}"] == ObjectReply(id=bytes([i]) * 32, value=None)
            submitted = results[f"submit{i}"]
            assert isinstance(submitted, TxReceipt) and submitted.tx == transaction(nonce=i + 1).id

    with_node(test)


def test_watching_all_topics_sees_each_shape_in_order() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            events = client.subscribe(["blocks", "transfers", "roster"])
            await events.start()
            await client.submit(transaction())
            await client.status()
            got = [await events.__anext__() for _ in range(4)]
        assert [(e.topic, e.seq) for e in got] == [("blocks", 0), ("transfers", 1), ("blocks", 2), ("roster", 3)]
        assert got[1].data["stage"] == "release" and got[3].data["node"] == NODE_KEY.public

    with_node(test)


def test_two_subscriptions_each_get_only_their_topics() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            blocks = client.subscribe(["blocks"])
            transfers = client.subscribe(["transfers"])
            await blocks.start()
            await transfers.start()
            await client.submit(transaction())
            assert (await transfers.__anext__()).topic == "transfers"
            assert [(await blocks.__anext__()).topic for _ in range(2)] == ["blocks", "blocks"]

    with_node(test)


def test_refused_request_is_a_peer_error_and_the_connection_stays_usable() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            with pytest.raises(PeerError) as refused:
                await client.object(REFUSED_OBJECT)
            assert refused.value.code == "request"
            assert "no such object here" in str(refused.value) and fake.address in str(refused.value)
            assert (await client.status()).data == STATUS_DATA
            assert await client.ping() >= 0

    with_node(test)


def test_a_connection_error_ends_everything_with_connection_lost() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            events = client.subscribe(["blocks"])
            await events.start()
            with pytest.raises(ConnectionLost) as lost:
                await client.block(FATAL_SHARD, 1)
            assert "the node is shutting down" in str(lost.value)
            with pytest.raises(ConnectionLost):
                await client.status()
            with pytest.raises(ConnectionLost):
                await events.__anext__()

    with_node(test)


def test_the_node_may_ping_the_client() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            await client.status()
            await client.ping()  # answered after the Pong, so the Pong has arrived
        assert fake.pongs == [99]

    with_node(test, FakeNode(ping_client=True))


def test_a_slow_subscriber_is_ended_not_the_replies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "EVENT_BUFFER", 4)

    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            events = client.subscribe(["blocks"])
            await events.start()
            assert (await client.status()).data == STATUS_DATA  # 10 events came first, unread
            got = [await events.__anext__() for _ in range(4)]
            assert [e.seq for e in got] == [0, 1, 2, 3]
            with pytest.raises(SubscriptionOverflow, match="fell 4 events behind"):
                await events.__anext__()

    with_node(test, FakeNode(flood=10))


def test_a_request_cancelled_while_waiting_does_not_shift_later_replies() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.status)
                while "get_status" not in fake.seen:  # sent, and its (slow) reply not yet back
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            # The Status reply still comes first; it must be dropped, not handed to this request.
            assert (await client.object(b"\x02" * 32)).id == b"\x02" * 32
            assert (await client.status()).data == STATUS_DATA

    with_node(test, FakeNode(status_delay=0.2))


def test_unknown_topic_is_refused_before_sending() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        async with open_client(fake.address) as client:
            with pytest.raises(InputError, match="blocks, transfers, roster"):
                client.subscribe(["bloks"])
        assert "subscribe" not in fake.seen

    with_node(test)


# -- errors connecting ------------------------------------------------------------------


def test_connection_refused_names_the_address_and_what_to_do() -> None:
    address = f"127.0.0.1:{free_port()}"

    async def test() -> None:
        async with open_client(address):
            raise AssertionError("connected to a port nothing listens on")

    with pytest.raises(NodeUnreachable) as unreachable:
        trio.run(test)
    assert address in str(unreachable.value)
    assert "sagachain node start" in str(unreachable.value) and "refused" in str(unreachable.value).lower()


def test_pinned_key_mismatch_is_unreachable_with_the_rule() -> None:
    async def test(fake: FakeNode, _: trio.Nursery) -> None:
        with pytest.raises(NodeUnreachable) as wrong:
            async with open_client(fake.address, expected=ALICE.public):
                pass
        assert wrong.value.rule == "MEM-5" and wrong.value.code == "pinned-key" and fake.address in str(wrong.value)

    with_node(test)


def test_a_server_that_is_not_a_node_fails_the_handshake() -> None:
    async def test() -> None:
        async def babble(stream: trio.SocketStream) -> None:
            await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, babble, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(NodeUnreachable, match=f"handshake with the node at 127.0.0.1:{port} failed"):
                async with open_client(f"127.0.0.1:{port}", timeout=5):
                    pass
            nursery.cancel_scope.cancel()

    trio.run(test)


@pytest.mark.parametrize("text", ["7101", "localhost", "host:", ":7101", "host:0", "host:70000", "host:port"])
def test_bad_addresses_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="HOST:PORT"):
        Address.parse(text)


def test_addresses_parse() -> None:
    assert Address.parse("127.0.0.1:7101") == Address("127.0.0.1", 7101)
    assert str(Address.parse("[::1]:7101")) == "[::1]:7101"


# -- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def node_thread() -> Iterator[FakeNode]:
    """A FakeNode in its own thread and trio run, for commands that run their own trio.run."""
    yield from _node_in_thread(FakeNode())


@pytest.fixture
def holding_node_thread() -> Iterator[FakeNode]:
    yield from _node_in_thread(FakeNode(hold_blocks=True))


@pytest.fixture
def flooding_node_thread() -> Iterator[FakeNode]:
    yield from _node_in_thread(FakeNode(flood=3))


def _node_in_thread(fake: FakeNode) -> Iterator[FakeNode]:
    ready = threading.Event()
    stop: list[Callable[[], None]] = []

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.serve)
            token = trio.lowlevel.current_trio_token()
            stop.append(lambda: trio.from_thread.run_sync(nursery.cancel_scope.cancel, trio_token=token))
            ready.set()

    thread = threading.Thread(target=trio.run, args=(run,), daemon=True)
    thread.start()
    assert ready.wait(10), "the fake node did not start"
    yield fake
    stop[0]()
    thread.join(10)


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env or {"SAGACHAIN_NODE": ""})


@pytest.mark.parametrize("command", ["send", "receipt", "account", "object", "block", "watch"])
def test_every_tx_command_has_help_with_an_example(command: str) -> None:
    result = invoke("tx", command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output and "--node" in result.output


def test_node_status_help_names_both_forms() -> None:
    result = invoke("node", "status", "--help")
    assert result.exit_code == 0 and "HOST:PORT" in result.output and "Example:" in result.output


SEED = ALICE.seed.hex()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sender", ALICE_ID.hex(), "--nonce", "1"], "exactly one of --key-seed"),
        (["--key-seed", SEED, "--nonce", "1"], "--sender ACCOUNT_ID_HEX is required"),
        (["--key-seed", "xyz", "--sender", ALICE_ID.hex(), "--nonce", "1"], "--key-seed: an Ed25519 seed is 64 hex digits"),
        (["--key-seed", SEED, "--sender", "abc", "--nonce", "1"], "--sender 'abc' must be 64 hex digits"),
        (["--key-seed", SEED, "--sender", ALICE_ID.hex(), "--nonce", "1", "--account", "a"], "write ALIAS=ACCOUNT"),
        (["--from", "alice", "--nonce", "1"], "names need --devnet"),
    ],
)
def test_send_argument_errors_exit_2_before_connecting(args: list[str], message: str) -> None:
    result = invoke("tx", "send", "--node", f"127.0.0.1:{free_port()}", "--gas-limit", "100", "--script", "a.pay(b, 1)", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_read_commands_need_a_node_address() -> None:
    result = invoke("tx", "receipt", "ab" * 32)
    assert result.exit_code == 2 and "give --node HOST:PORT or set SAGACHAIN_NODE" in result.output


def test_unreachable_node_exits_1_with_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    result = invoke("tx", "account", ALICE_ID.hex(), "--node", address)
    assert result.exit_code == 1 and address in result.output and "sagachain node start" in result.output
    result = invoke("node", "status", address)
    assert result.exit_code == 1 and address in result.output


def test_send_and_wait_prints_the_receipt_and_the_block(node_thread: FakeNode) -> None:
    result = invoke("tx", "send", "--key-seed", SEED, "--sender", ALICE_ID.hex(), "--nonce", "1", "--gas-limit", "10000", "--account", f"a={ALICE_ID.hex()}", "--account", f"b={BOB_ID.hex()}", "--script", "a.pay(b, 1)", "--wait", env={"SAGACHAIN_NODE": node_thread.address})
    assert result.exit_code == 0, result.output
    (tx,) = node_thread.submitted.values()
    assert tx == transaction()  # signed as make_transaction signs it
    assert tx.id.hex() in result.output and "yes: queued" in result.output
    assert "final in block P0 / 2, entry 0: script succeeded" in result.output


def test_send_json_reports_a_failed_script_with_status_1(node_thread: FakeNode) -> None:
    result = invoke("tx", "send", "--node", node_thread.address, "--key-seed", SEED, "--sender", ALICE_ID.hex(), "--nonce", "2", "--gas-limit", "10000", "--script", "fail()", "--wait", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["receipt"]["accepted"] is True and report["final"] == {"shard": "P0", "height": 2, "index": 0, "ok": False, "hash": (bytes([2]) * 32).hex()}


def test_send_refused_by_the_node_exits_1(node_thread: FakeNode) -> None:
    result = invoke("tx", "send", "--node", node_thread.address, "--key-seed", SEED, "--sender", ALICE_ID.hex(), "--nonce", "1", "--gas-limit", "10000", "--script", "refuse()")
    assert result.exit_code == 1 and "accepted" in result.output and "queued" not in result.output


def test_send_wait_times_out_with_the_pending_receipt(holding_node_thread: FakeNode) -> None:
    result = invoke("tx", "send", "--node", holding_node_thread.address, "--key-seed", SEED, "--sender", ALICE_ID.hex(), "--nonce", "1", "--gas-limit", "10000", "--script", "a.pay(b, 1)", "--wait", "--timeout", "0.3")
    assert result.exit_code == 1
    assert "not final after 0.3 s (status pending)" in result.output and "sagachain tx receipt" in result.output


def write_devnet(directory: Path, address: str) -> None:
    accounts = [{"name": "alice", "id": ALICE_ID.hex(), "seed": ALICE.seed.hex(), "enclave": None}, {"name": "bob", "id": BOB_ID.hex(), "seed": "00" * 32, "enclave": "acme"}]
    (directory / "devnet.json").write_text(json.dumps({"accounts": accounts, "nodes": [{"name": "n1", "address": address, "node_key": NODE_KEY.public.hex()}]}))


def test_devnet_names_keys_address_and_nonces(node_thread: FakeNode, tmp_path: Path) -> None:
    write_devnet(tmp_path, node_thread.address)
    base = ["tx", "send", "--devnet", str(tmp_path), "--from", "alice", "--account", "a=alice", "--account", "b=bob", "--gas-limit", "10000", "--script", "a.pay(b, 1)"]
    result = invoke(*base)  # nothing signed yet: nonce 1
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "nonces.json").read_text()) == {ALICE_ID.hex(): 1}
    (tmp_path / "nonces.json").write_text(json.dumps({ALICE_ID.hex(): 4, BOB_ID.hex(): 9}))  # as `devnet load` leaves it
    result = invoke(*base)
    assert result.exit_code == 0, result.output
    assert sorted(tx.nonce for tx in node_thread.submitted.values()) == [1, 5]
    assert all((tx.sender, tx.account_ids()) == (ALICE_ID, (ALICE_ID, BOB_ID)) for tx in node_thread.submitted.values())
    assert json.loads((tmp_path / "nonces.json").read_text()) == {ALICE_ID.hex(): 5, BOB_ID.hex(): 9}
    (tmp_path / "nonces.json").write_text("{not json")
    result = invoke(*base)
    assert result.exit_code == 2 and "give --nonce N" in result.output
    result = invoke(*base[:-2], "--script", "x", "--from", "carol")
    assert result.exit_code == 2 and "'carol' is not an account of the devnet" in result.output


def test_read_commands_print_tables_and_json(node_thread: FakeNode) -> None:
    env = {"SAGACHAIN_NODE": node_thread.address}
    result = invoke("tx", "receipt", "ab" * 32, "--json", env=env)
    assert result.exit_code == 0 and json.loads(result.output)["status"] == "unknown"
    result = invoke("tx", "object", "cd" * 32, env=env)
    assert result.exit_code == 0 and "cd" * 32 in result.output and "off chain" in result.output
    result = invoke("tx", "object", REFUSED_OBJECT.hex(), env=env)
    assert result.exit_code == 1 and "no such object here" in result.output
    result = invoke("tx", "block", "P0", "3", "--json", env=env)
    assert result.exit_code == 0 and json.loads(result.output) == {"type": "block", "shard": "P0", "height": 3, "block": None}


def test_watch_prints_events_as_json_lines_and_rows(flooding_node_thread: FakeNode) -> None:
    result = invoke("tx", "watch", "--node", flooding_node_thread.address, "--count", "2", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(e["type"], e["topic"], e["seq"], e["data"]["height"]) for e in lines] == [("event", "blocks", 0, 1), ("event", "blocks", 1, 2)]
    assert lines[0]["data"]["hash"] == (bytes([1]) * 32).hex()
    result = invoke("tx", "watch", "--node", flooding_node_thread.address, "--count", "3")
    assert result.exit_code == 0, result.output
    assert "P0 / 3  0 txs  hash 0303030303030303" in result.output


def test_node_status_of_an_address_asks_the_node(node_thread: FakeNode) -> None:
    result = CliRunner().invoke(main, ["node", "status", node_thread.address], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "shards P0" in result.output and "height: 7, queue: 2" in result.output and "127.0.0.1:7102" in result.output
    result = invoke("node", "status", node_thread.address, "--json")
    assert json.loads(result.output) == STATUS_DATA


# -- against a real node ----------------------------------------------------------------


@pytest.mark.slow
def test_send_wait_against_a_real_node_then_read_back(tmp_path: Path) -> None:
    """A one-node devnet (``sagachain node start`` in its own process): send, wait final, read the result."""
    from node.devnet import DevnetSpec, stop_devnet, up

    root = tmp_path / "devnet"
    record = up(root, DevnetSpec(shards=1, enclave_shards=0, enclave_accounts=0, nodes_per_shard=1, accounts=2), metrics=False)
    try:
        (node,) = record["nodes"]
        env = {"SAGACHAIN_NODE": ""}
        result = invoke("tx", "send", "--devnet", str(root), "--from", "user0", "--account", "src=user0", "--account", "dst=user1",
                        "--gas-limit", "100000", "--script", "src.pay(dst, 5)", "--wait", "--timeout", "30", "--json", env=env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["receipt"]["accepted"] is True and report["final"]["shard"] == "P0" and report["final"]["ok"] is True
        receipt = json.loads(invoke("tx", "receipt", report["tx"], "--node", node["address"], "--json").output)
        assert (receipt["status"], receipt["height"], receipt["ok"]) == ("final", report["final"]["height"], True)
        user1 = next(a for a in record["accounts"] if a["name"] == "user1")
        account = json.loads(invoke("tx", "account", user1["id"], "--node", node["address"], "--json").output)
        assert account["value"]["fields"]["balance"] == 1_000_005
        status = json.loads(invoke("node", "status", node["address"], "--json").output)
        assert status["shards"]["P0"]["height"] >= report["final"]["height"] and status["node_key"] == node["node_key"]
        assert json.loads((root / "nonces.json").read_text()) == {next(a["id"] for a in record["accounts"] if a["name"] == "user0"): 1}
    finally:
        stop_devnet(root, timeout=10)


def test_without_nonce_send_signs_one_past_the_nodes_last_nonce(tmp_path: Path) -> None:
    fake = FakeNode(last_nonce=6)

    async def run(node: FakeNode, nursery: trio.Nursery) -> None:
        result = await trio.to_thread.run_sync(lambda: invoke(
            "tx", "send", "--node", node.address, "--key-seed", SEED, "--sender", ALICE_ID.hex(), "--gas-limit", "10000",
            "--account", f"a={ALICE_ID.hex()}", "--account", f"b={BOB_ID.hex()}", "--script", "a.pay(b, 1)"))
        assert result.exit_code == 0, result.output
        assert [tx.nonce for tx in node.submitted.values()] == [7]
        assert "get_account" in node.seen

    with_node(run, fake)
