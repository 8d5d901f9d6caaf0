"""The client side of the node protocol: one connection, requests in order, events on the side.

A client (``sagachain tx``, a script, a test) talks to one node over the
encrypted channel of ``node/channel.py``. The node answers requests in the
order they were sent; after a Subscribe it also pushes Event messages on the
same connection, and those may arrive between two replies. A reply carries
no request id, so the only way to pair replies with requests is that order.

Hence the shape of this module: one background reader task owns the
receiving side of the channel. It hands every Event to the subscriptions
that asked for its topic, answers a Ping from the node, and gives every other
message to the oldest request still waiting (first in, first out). A request
puts itself in that queue and sends its message under one lock, so the queue
order is the wire order even when several tasks ask at once.

Errors, and why they are split the way they are:

- the node refused one request (an Error with code ``"request"``): that
  request raises :class:`node.wire.PeerError`; the connection stays open;
- the node could not be reached, or the handshake failed: :class:`NodeUnreachable`,
  naming the address and what to check;
- the connection died later (closed, broken, another Error code, a reply of
  the wrong type): :class:`ConnectionLost` for everything still waiting and
  every later call. A client never guesses which reply belongs to whom.

Usage::

    async with open_client("127.0.0.1:7101") as client:
        receipt = await client.submit(tx)
        async for event in client.subscribe(["blocks"]):
            ...
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from node.channel import Channel, connect
from node.messages import MAX_OBJECTS_PER_REPLY, GetObject, GetObjects, GetReceipt, GetStatus, ObjectReply, ObjectsReply, Receipt, Status
from node.wire import (
    AccountReply,
    BlockReply,
    ErrorMessage,
    Event,
    GetAccount,
    GetBlock,
    Message,
    REQUEST,
    PeerError,
    Ping,
    Pong,
    ProtocolError,
    SubmitTx,
    Subscribe,
    TxReceipt,
)
from sagachain.core.keys import KeyPair
from sagachain.core.objects import StoredObject
from sagachain.core.tx import Transaction
from sagachain.errors import InputError, SagaError

CONNECT_TIMEOUT = 10.0  # seconds for the TCP connection and the handshake together
SEND_TIMEOUT = 30.0  # seconds one request may take to leave: longer means the node stopped reading
EVENT_BUFFER = 4096  # events a subscription holds unread before it is ended as too slow
TOPICS = ("blocks", "transfers", "roster", "mail")  # what the node publishes (docs/CLIENT.md)
START_HINT = "is the node running? start it with `sagachain node start DIR`, or check --node / SAGACHAIN_NODE"

R = TypeVar("R", bound=Message)


class ClientError(SagaError):
    """Base of the client's own errors: the connection to a node, not a refused request."""


class NodeUnreachable(ClientError):
    """No channel to the node: the TCP connection was refused or timed out, or the handshake failed.

    ``code`` is the handshake's Error code when there was one (``"refused"``,
    ``"pinned-key"``, ...), else None.
    """

    def __init__(self, message: str, *, rule: str | None = None, code: str | None = None) -> None:
        self.code = code
        super().__init__(message, rule=rule)


class ConnectionLost(ClientError):
    """The open connection ended: whatever was waiting on it, and every later call, gets this."""


class SubscriptionOverflow(ClientError):
    """A subscription's reader fell so far behind that its buffer filled; it was ended, not blocked,
    so that one slow reader cannot hold up the replies of the whole connection."""


@dataclass(frozen=True)
class Address:
    """A node's ``host:port``, checked once where the user typed it."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        host, sep, port = text.strip().rpartition(":")
        host = host.strip("[]")  # "[::1]:7101"
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise InputError(f"node address {text!r} must be HOST:PORT with a port in 1..65535, e.g. 127.0.0.1:7101")
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@asynccontextmanager
async def open_client(
    address: str, key: KeyPair | None = None, expected: bytes | None = None, *, timeout: float = CONNECT_TIMEOUT
) -> AsyncIterator[Client]:
    """Connect to the node at ``address`` ("host:port") and yield a :class:`Client`.

    ``key`` is this client's node key (a fresh one when None: a node serves
    clients it has never heard of); ``expected`` pins the node's key (MEM-5).
    Leaving the block closes the connection and stops the reader.
    """
    where = Address.parse(address)
    channel = await _dial(where, key if key is not None else KeyPair(os.urandom(32)), expected, timeout)
    try:
        async with trio.open_nursery() as nursery:
            client = Client(address=where, channel=channel, nursery=nursery)
            nursery.start_soon(client._read)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await channel.aclose()
    except BaseExceptionGroup as group:
        # The reader never raises, so a lone member is the caller's own exception (a PeerError,
        # say): hand it back as raised, not wrapped in a group the caller did not ask for.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _dial(where: Address, key: KeyPair, expected: bytes | None, timeout: float) -> Channel:
    """TCP connection and handshake, every failure turned into one :class:`NodeUnreachable` naming ``where``."""
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(where.host, where.port)
    except trio.TooSlowError:
        raise NodeUnreachable(f"no TCP connection to the node at {where} within {timeout} s; {START_HINT}") from None
    except OSError as exc:
        raise NodeUnreachable(f"cannot connect to the node at {where}: {_os_reason(exc)}; {START_HINT}") from None
    try:
        return await connect(stream, key, expected, timeout=timeout)
    except PeerError as exc:
        raise NodeUnreachable(
            f"the node at {where} refused the connection ({exc.code}): {exc.message}", rule=exc.rule, code=exc.code
        ) from None
    except ProtocolError as exc:
        raise NodeUnreachable(
            f"handshake with the node at {where} failed: {exc.message}; check that {where} is a SagaChain node "
            "(not another service) and that the pinned node key, if any, is the node's",
            rule=exc.rule,
            code=exc.code,
        ) from None


def _os_reason(exc: OSError) -> str:
    """The first attempt's own words ("Connection refused"), not trio's "all attempts failed"."""
    causes = getattr(exc.__cause__, "exceptions", ())
    reasons = dict.fromkeys(c.strerror for c in causes if isinstance(c, OSError) and c.strerror)
    return "; ".join(reasons) if reasons else (exc.strerror or str(exc))


@dataclass(eq=False)
class Client:
    """An open connection to one node. Make it with :func:`open_client`, not directly.

    Several tasks may use one client at once: each request is matched to its
    reply by the order they were sent in.
    """

    address: Address
    channel: Channel
    nursery: trio.Nursery
    _waiting: deque[trio.MemorySendChannel[Message | SagaError]] = field(default_factory=deque)
    _order: trio.Lock = field(default_factory=trio.Lock)  # queue position and wire position agree
    _subscriptions: list[Subscription] = field(default_factory=list)
    _failure: ClientError | PeerError | None = None
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def node_key(self) -> bytes:
        """The node's Ed25519 key, as proven in the handshake."""
        return self.channel.peer

    # -- requests -------------------------------------------------------------------

    async def submit(self, tx: Transaction) -> TxReceipt:
        """Hand a signed transaction to the node; accepted means queued, not yet executed."""
        return await self._request(SubmitTx(tx=tx), TxReceipt)

    async def account(self, account_id: bytes) -> AccountReply:
        return await self._request(GetAccount(account=account_id), AccountReply)

    async def object(self, oid: bytes) -> ObjectReply:
        return await self._request(GetObject(id=oid), ObjectReply)

    async def objects(self, account: bytes) -> dict[bytes, StoredObject]:
        """Every public object ``account`` owns, fetched page by page (GetObjects)."""
        found: dict[bytes, StoredObject] = {}
        after = b""
        while True:
            reply = await self._request(GetObjects(account=account, after=after, limit=MAX_OBJECTS_PER_REPLY), ObjectsReply)
            found.update(reply.objects)
            if not reply.more or not reply.objects:
                return found
            after = max(reply.objects)

    async def block(self, shard: str, height: int) -> BlockReply:
        return await self._request(GetBlock(shard=shard, height=height), BlockReply)

    async def receipt(self, tx_id: bytes) -> Receipt:
        return await self._request(GetReceipt(tx=tx_id), Receipt)

    async def status(self) -> Status:
        return await self._request(GetStatus(), Status)

    async def ping(self) -> float:
        """Round trip to the node, in seconds; proves the node still reads and answers."""
        seq = next(self._seq)
        started = trio.current_time()
        pong = await self._request(Ping(seq=seq), Pong)
        if pong.seq != seq:
            lost = ConnectionLost(f"the node at {self.address} answered ping {seq} with pong {pong.seq}; reconnect")
            await self._fail(lost)
            raise lost
        return trio.current_time() - started

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        """Events of ``topics``, as an async iterator (and an async context manager).

        The Subscribe goes out at ``async with`` or at the first iteration,
        whichever comes first: enter the context before submitting a
        transaction whose block you want to see.
        """
        wanted = tuple(dict.fromkeys(topics))
        unknown = [t for t in wanted if t not in TOPICS]
        if not wanted or unknown:
            raise InputError(f"topics {list(wanted)}: subscribe to one or more of {', '.join(TOPICS)}")
        return Subscription(client=self, topics=wanted)

    async def _request(self, msg: Message, expect: type[R]) -> R:
        """Send ``msg`` and wait for its reply, which must be an ``expect`` (or a refusal)."""
        slot, reply_channel = trio.open_memory_channel[Message | SagaError](1)
        await self._send(msg, slot)
        with reply_channel:  # a request cancelled while waiting leaves its slot; the reader drops the reply
            reply = await reply_channel.receive()
        if isinstance(reply, SagaError):
            raise reply
        if isinstance(reply, ErrorMessage):
            raise PeerError(f"the node at {self.address} refused the {msg.TYPE!r} request: {reply.reason}", rule=reply.rule, code=reply.code)
        if not isinstance(reply, expect):
            lost = ConnectionLost(
                f"the node at {self.address} answered a {msg.TYPE!r} request with a {reply.TYPE!r} message, "
                f"not {expect.TYPE!r}: replies are out of order, so the connection was closed; reconnect"
            )
            await self._fail(lost)
            raise lost
        return reply

    async def _send(self, msg: Message, slot: trio.MemorySendChannel[Message | SagaError] | None) -> None:
        """Queue ``slot`` for the reply (None: no reply expected) and send ``msg``, as one step."""
        async with self._order:
            if self._failure is not None:
                raise self._failure
            if slot is not None:
                self._waiting.append(slot)
            try:
                # Shielded: a send cut short leaves the channel's frame counter (and maybe half a
                # frame) behind, and the queue out of step with the wire. Cancelling a request
                # takes effect while it waits for its reply instead, which is harmless.
                with trio.CancelScope(shield=True, deadline=trio.current_time() + SEND_TIMEOUT) as scope:
                    await self.channel.send(msg)
                if scope.cancelled_caught:
                    lost = ConnectionLost(f"the node at {self.address} took no {msg.TYPE!r} request within {SEND_TIMEOUT} s (it stopped reading); reconnect")
                    await self._fail(lost)
                    raise lost
            except (ProtocolError, trio.ClosedResourceError) as exc:
                reason = exc.message if isinstance(exc, ProtocolError) else "the connection is closed"
                lost = ConnectionLost(f"sending a {msg.TYPE!r} request to the node at {self.address} failed: {reason}; reconnect")
                await self._fail(lost)
                raise (self._failure or lost) from None
            except ClientError:
                raise
            except BaseException:
                # Interrupted mid-send all the same (KeyboardInterrupt): the node may or may not
                # have the request, so the queue can no longer be trusted to pair replies.
                await self._fail(ConnectionLost(f"a {msg.TYPE!r} request to the node at {self.address} was interrupted while being sent; reconnect"))
                raise

    # -- the reader ----------------------------------------------------------------

    async def _read(self) -> None:
        """The one task that receives: route every message until the connection ends."""
        try:
            async for msg in self.channel:
                await self._route(msg)
            failure: ClientError | PeerError = ConnectionLost(f"the node at {self.address} closed the connection; reconnect")
        except ProtocolError as exc:
            failure = ConnectionLost(f"the connection to the node at {self.address} failed: {exc.message}; reconnect", rule=exc.rule)
        except trio.ClosedResourceError:
            failure = ConnectionLost(f"the connection to the node at {self.address} is closed")
        await self._fail(failure)

    async def _route(self, msg: Message) -> None:
        if isinstance(msg, Event):
            for subscription in [s for s in self._subscriptions if msg.topic in s.topics]:
                subscription._deliver(msg)
            return
        if isinstance(msg, Ping):
            self.nursery.start_soon(self._answer_ping, msg.seq)
            return
        if isinstance(msg, ErrorMessage) and msg.code != REQUEST:
            raise ProtocolError(f"the node sent Error {msg.code!r}: {msg.reason}", rule=msg.rule, code=msg.code)
        if not self._waiting:
            if isinstance(msg, ErrorMessage):
                # No request is waiting, so the refused message was a Subscribe (it has no reply).
                refusal = PeerError(f"the node at {self.address} refused a subscription: {msg.reason}", rule=msg.rule, code=msg.code)
                for subscription in list(self._subscriptions):
                    subscription._end(refusal)
                return
            raise ProtocolError(f"the node sent a {msg.TYPE!r} message no request asked for")
        slot = self._waiting.popleft()
        try:
            slot.send_nowait(msg)
        except trio.BrokenResourceError:
            pass  # its request was cancelled while waiting; the reply only kept the order

    async def _answer_ping(self, seq: int) -> None:
        try:
            await self._send(Pong(seq=seq), None)
        except ClientError:
            pass  # the connection is gone; the reader reports that

    async def _fail(self, failure: ClientError | PeerError) -> None:
        """End the connection once: everything waiting, and every later call, gets ``failure``."""
        if self._failure is not None:
            return
        self._failure = failure
        while self._waiting:
            slot = self._waiting.popleft()
            try:
                slot.send_nowait(failure)
            except trio.BrokenResourceError:
                pass
        for subscription in list(self._subscriptions):
            subscription._end(failure)
        with trio.CancelScope(shield=True):  # closing a socket is quick, and must happen even when cancelled
            await self.channel.aclose()


@dataclass(eq=False)
class Subscription:
    """The events of some topics on one client, in the order the node sent them."""

    client: Client
    topics: tuple[str, ...]
    _started: bool = False
    _error: SagaError | None = None
    _inbox: trio.MemorySendChannel[Event] = field(init=False)
    _outbox: trio.MemoryReceiveChannel[Event] = field(init=False)

    def __post_init__(self) -> None:
        self._inbox, self._outbox = trio.open_memory_channel[Event](EVENT_BUFFER)

    async def start(self) -> None:
        """Send the Subscribe (once). Events of these topics are kept from then on."""
        if self._started:
            return
        self._started = True
        self.client._subscriptions.append(self)
        await self.client._send(Subscribe(topics=self.topics), None)

    async def aclose(self) -> None:
        """Stop keeping events for this subscription (the node does not learn of it: there is no Unsubscribe)."""
        if self in self.client._subscriptions:
            self.client._subscriptions.remove(self)
        self._outbox.close()

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        await self.start()
        try:
            return await self._outbox.receive()
        except trio.EndOfChannel:
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None
        except trio.ClosedResourceError:
            raise StopAsyncIteration from None

    def _deliver(self, event: Event) -> None:
        try:
            self._inbox.send_nowait(event)
        except trio.WouldBlock:
            self._end(
                SubscriptionOverflow(
                    f"subscription to {', '.join(self.topics)} on {self.client.address} fell {EVENT_BUFFER} events "
                    "behind and was ended; read events faster, or subscribe to fewer topics"
                )
            )
        except trio.BrokenResourceError:
            self._end(None)

    def _end(self, error: SagaError | None) -> None:
        """No more events: after those buffered, iteration stops (raising ``error`` if given)."""
        if self in self.client._subscriptions:
            self.client._subscriptions.remove(self)
        if self._error is None:
            self._error = error
        self._inbox.close()


async def wait_final(events: AsyncIterator[Event], tx_id: bytes) -> tuple[dict[str, Any], int]:
    """The first "blocks" event whose block holds ``tx_id``, and the transaction's index in it."""
    async for event in events:
        if event.topic != "blocks" or not isinstance(event.data, dict):
            continue
        txs = event.data.get("txs") or []
        if tx_id in txs:
            return event.data, list(txs).index(tx_id)
    raise ConnectionLost(f"the block events ended before transaction {tx_id.hex()} was final")
