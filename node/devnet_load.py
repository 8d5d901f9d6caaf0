"""``devnet load``: the simulator's workloads, signed and sent to a running devnet at wall-clock times.

The transactions are the very shapes the simulator runs (``sagachain.world.workloads.mix``,
below both drivers, over the devnet's own declarations, ``node.devnet.devnet_declarations``),
so a figure measured on the devnet can be set beside a simulated one. Planning
(:func:`plan_load`) is pure: the same devnet, rate, duration, mix, seed and
starting nonces give the same signed transactions. :func:`run_load` then submits
each at its time to a node of the shard that runs it, watches the ``blocks``
events of the nodes, and :class:`LoadReport` says what became final and how fast.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import trio

from sagachain.core.keys import KeyPair
from sagachain.core.tx import Transaction, classify, make_transaction
from sagachain.errors import InputError
from sagachain.world.workloads import Steady, mix

from node.client import Client, ClientError, open_client
from node.devnet import devnet_declarations, spec_of
from node.wire import PeerError

KINDS = ("open", "enclave", "mixed")
WATCHERS_PER_SHARD = 2
DEFAULT_MIX = {"open": 0.6, "enclave": 0.2, "mixed": 0.2}


def parse_mix(text: str) -> dict[str, float]:
    """``"open=0.6,enclave=0.2,mixed=0.2"`` as shares; kinds left out get 0, shares must add up to 1."""
    shares = dict.fromkeys(KINDS, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = (x.strip() for x in part.partition("="))
        if not sep or kind not in shares:
            raise InputError(f"--mix {text!r}: {part!r} must be KIND=SHARE with KIND one of {', '.join(KINDS)}")
        try:
            shares[kind] = float(value)
        except ValueError:
            raise InputError(f"--mix {text!r}: the share of {kind} ({value!r}) must be a number such as 0.2") from None
    if any(not v >= 0 for v in shares.values()) or abs(sum(shares.values()) - 1) > 1e-9:
        raise InputError(f"--mix {text!r}: shares must be >= 0 and add up to 1, e.g. open=0.6,enclave=0.2,mixed=0.2")
    return shares


@dataclass(frozen=True)
class LoadSpec:
    rate: float  # offered transactions per second
    duration: float  # seconds of submission
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 1

    def check(self) -> None:
        if not self.rate > 0:
            raise InputError(f"--rate {self.rate}: the offered rate must be > 0 transactions per second")
        if not self.duration > 0:
            raise InputError(f"--duration {self.duration}: the load must last > 0 seconds")


@dataclass(frozen=True)
class PlannedTx:
    """One transaction of a load: when to send it (seconds from the start), its kind, and the shard that runs it."""

    at: float
    kind: str
    shard: str
    tx: Transaction


def plan_load(record: dict[str, Any], load: LoadSpec, nonces: dict[str, int] | None = None) -> list[PlannedTx]:
    """The signed transactions of a load on the devnet of ``record``, in submission order.

    ``nonces`` maps an account id (hex) to the last nonce it signed (a previous
    load's ``nonces.json``); each sender's nonces go on from there, one by one
    in time order, as TX-1 and the shards' queues want them.
    """
    load.check()
    spec = spec_of(record)
    if load.mix["enclave"] + load.mix["mixed"] > 0 and not (spec.enclave_shards and spec.enclave_accounts):
        raise InputError("this devnet has no enclave vaults (made with --enclave-shards 0 or --enclave-accounts 0), "
                         "so it cannot carry enclave or mixed transactions; pass --mix open=1")
    s = devnet_declarations(spec)
    s.rng = random.Random(f"devnet-load/{load.seed}")  # the workload's own seed; the chain's keys keep the devnet's
    duration_ms = max(1, round(load.duration * 1000))
    count = round(load.rate * load.duration)
    decls = mix(s, count, 0, duration_ms, open=load.mix["open"], enclave=load.mix["enclave"], mixed=load.mix["mixed"], arrivals=Steady())
    accounts = {a["name"]: a for a in record["accounts"]}
    missing = sorted({n for d in decls for n in [d.sender, d.payer, *d.accounts.values()]} - set(accounts))
    if missing:
        raise InputError(f"devnet.json lacks accounts {missing} that its own spec declares; the record is damaged: make the devnet again")
    keys = {name: KeyPair(bytes.fromhex(a["seed"])) for name, a in accounts.items()}
    last = dict(nonces or {})
    planned = []
    for decl in sorted(decls, key=lambda d: d.at):  # sorted is stable: equal times keep declaration order
        sender = accounts[decl.sender]
        last[sender["id"]] = last.get(sender["id"], 0) + 1
        tx = make_transaction(
            key=keys[decl.sender],
            sender=bytes.fromhex(sender["id"]),
            nonce=last[sender["id"]],
            gas_limit=decl.gas_limit,
            gas_payer=bytes.fromhex(accounts[decl.payer]["id"]),
            accounts={alias: bytes.fromhex(accounts[name]["id"]) for alias, name in decl.accounts.items()},
            script=decl.script,
        )
        touched = [accounts[name] for name in decl.accounts.values()]
        enclaves = {a["enclave"] for a in touched if a["enclave"]}
        kind = classify(enclaves, any(a["enclave"] is None for a in touched))
        first_enclave = next((a for a in touched if a["enclave"]), None)
        shard = (first_enclave or accounts[decl.payer])["shard"]  # the node's routing rule
        planned.append(PlannedTx(decl.at / 1000, kind, shard, tx))
    return planned


def last_nonces(planned: list[PlannedTx], before: dict[str, int] | None = None) -> dict[str, int]:
    """``before`` advanced by the nonces ``planned`` signs: what the next load starts from."""
    out = dict(before or {})
    for item in planned:
        sender = item.tx.sender.hex()
        out[sender] = max(out.get(sender, 0), item.tx.nonce)
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LoadReport:
    """What a load offered and what became final; latencies in ms from submit to the first
    ``blocks`` event naming the transaction."""

    offered_rate: float
    duration: float
    planned: int = 0
    submitted: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # rule (or "unreachable") -> count
    committed: int = 0
    failed_in_block: int = 0  # final, but its script failed (it still paid its gas)
    committed_tps: float = 0.0
    window: float = 0.0  # seconds from the first submission to the last commit (at least ``duration``)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    blocks: int = 0
    pending: int = 0  # accepted but not seen final when the drain ended

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadTracker:
    """The bookkeeping of a running load, apart from any I/O so that it can be tested by itself."""

    planned: list[PlannedTx]
    kinds: dict[bytes, str] = field(default_factory=dict)
    sent: dict[bytes, float] = field(default_factory=dict)
    accepted: set[bytes] = field(default_factory=set)
    rejected: Counter[str] = field(default_factory=Counter)
    final: dict[bytes, tuple[float, bool]] = field(default_factory=dict)
    blocks: set[tuple[str, int]] = field(default_factory=set)
    first_sent: float | None = None

    def __post_init__(self) -> None:
        self.kinds = {p.tx.id: p.kind for p in self.planned}

    def on_sent(self, tx_id: bytes, now: float) -> None:
        self.sent[tx_id] = now
        self.first_sent = now if self.first_sent is None else min(self.first_sent, now)

    def on_receipt(self, tx_id: bytes, accepted: bool, rule: str | None) -> None:
        if accepted:
            self.accepted.add(tx_id)
        else:
            self.rejected[rule or "unknown"] += 1

    def on_unreachable(self) -> None:
        self.rejected["unreachable"] += 1

    def on_block(self, data: dict[str, Any], now: float) -> None:
        """A ``blocks`` event; the first sighting of a block (from any node) counts."""
        key = (str(data.get("shard")), int(data.get("height", 0)))
        if key in self.blocks:
            return
        self.blocks.add(key)
        oks = list(data.get("ok") or [])
        for i, tx_id in enumerate(data.get("txs") or []):
            tx_id = bytes(tx_id)
            if tx_id in self.kinds and tx_id not in self.final:
                self.final[tx_id] = (now, bool(oks[i]) if i < len(oks) else True)

    def outstanding(self) -> int:
        """Accepted transactions not yet seen final: what the drain waits for."""
        return sum(1 for t in self.accepted if t not in self.final)

    def report(self, load: LoadSpec) -> LoadReport:
        committed = [t for t in self.final if t in self.sent]
        latencies = [(self.final[t][0] - self.sent[t]) * 1000 for t in committed]
        start = self.first_sent or 0.0
        last = max((self.final[t][0] for t in committed), default=start)
        window = max(load.duration, last - start)
        by_kind = {k: {"submitted": 0, "accepted": 0, "committed": 0} for k in KINDS}
        for tx_id, kind in self.kinds.items():
            row = by_kind[kind]
            row["submitted"] += tx_id in self.sent
            row["accepted"] += tx_id in self.accepted
            row["committed"] += tx_id in self.final and tx_id in self.sent
        return LoadReport(
            offered_rate=load.rate,
            duration=load.duration,
            planned=len(self.planned),
            submitted=len(self.sent),
            accepted=len(self.accepted),
            rejected=dict(sorted(self.rejected.items())),
            committed=len(committed),
            failed_in_block=sum(1 for t in committed if not self.final[t][1]),
            committed_tps=len(committed) / window if window > 0 else 0.0,
            window=window,
            latency_ms={f"p{q}": percentile(latencies, q) for q in (50, 90, 99)},
            by_kind=by_kind,
            blocks=len(self.blocks),
            pending=self.outstanding(),
        )


def shard_nodes(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The devnet's nodes by the shard whose committee they serve."""
    out: dict[str, list[dict[str, Any]]] = {}
    for node in record["nodes"]:
        for shard in node["shards"]:
            out.setdefault(shard, []).append(node)
    return out


class ClientPool:
    """One open client per node address, shared by every submission (the client pairs replies with
    requests itself, so many tasks may use one connection); a failed one is dropped and redialled."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._clients: dict[str, tuple[Client, trio.Event]] = {}
        self._locks: dict[str, trio.Lock] = {}

    async def get(self, address: str) -> Client:
        lock = self._locks.setdefault(address, trio.Lock())
        async with lock:
            if address not in self._clients:
                self._clients[address] = await self._nursery.start(self._hold, address)
            return self._clients[address][0]

    def drop(self, address: str) -> None:
        held = self._clients.pop(address, None)
        if held is not None:
            held[1].set()

    async def _hold(self, address: str, task_status: trio.TaskStatus[tuple[Client, trio.Event]]) -> None:
        async with open_client(address) as client:
            done = trio.Event()
            task_status.started((client, done))
            await done.wait()


async def run_load(
    record: dict[str, Any],
    load: LoadSpec,
    planned: list[PlannedTx],
    drain: float = 10.0,
    on_progress: Callable[[LoadTracker, str], None] | None = None,
    tracker: LoadTracker | None = None,
) -> LoadReport:
    """Submit ``planned`` at their times, spreading each shard's transactions over its committee
    (and trying the next member when one does not answer); watch ``blocks`` on two nodes per shard;
    after the last submission wait up to ``drain`` seconds for the accepted ones to become final."""
    tracker = tracker if tracker is not None else LoadTracker(planned)
    committees = shard_nodes(record)
    missing = sorted({p.shard for p in planned} - set(committees))
    if missing:
        raise InputError(f"no node of the devnet serves shard(s) {missing}; devnet.json is damaged: make the devnet again")

    def progress(phase: str) -> None:
        if on_progress is not None:
            on_progress(tracker, phase)

    async def watch(address: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Follow one node's final blocks; a node that cannot be reached, or goes away, is not watched."""
        started = False
        try:
            async with open_client(address) as client, client.subscribe(["blocks"]) as events:
                task_status.started()
                started = True
                async for event in events:
                    if isinstance(event.data, dict):
                        tracker.on_block(event.data, trio.current_time())
        except (ClientError, PeerError):
            if not started:
                task_status.started()

    async def submit(pool: ClientPool, item: PlannedTx, index: int) -> None:
        members = committees[item.shard]
        for attempt in range(len(members)):
            address = members[(index + attempt) % len(members)]["address"]
            try:
                client = await pool.get(address)
                tracker.on_sent(item.tx.id, trio.current_time())
                receipt = await client.submit(item.tx)
            except PeerError as exc:  # the node refused the request itself
                tracker.on_receipt(item.tx.id, False, exc.rule or "refused")
                return
            except ClientError:
                pool.drop(address)
                continue
            tracker.on_receipt(item.tx.id, bool(receipt.accepted), receipt.rule)
            progress("submitting")
            return
        tracker.on_unreachable()
        progress("submitting")

    async with trio.open_nursery() as watching:
        for members in committees.values():  # two per shard: one node going down must not blind the load
            for node in members[:WATCHERS_PER_SHARD]:
                await watching.start(watch, node["address"])
        async with trio.open_nursery() as holding:
            pool = ClientPool(holding)
            start = trio.current_time()
            async with trio.open_nursery() as sending:
                for index, item in enumerate(planned):
                    await trio.sleep_until(start + item.at)
                    sending.start_soon(submit, pool, item, index)
                    progress("submitting")
            deadline = trio.current_time() + drain
            while tracker.outstanding() and trio.current_time() < deadline:
                progress("draining")
                await trio.sleep(0.1)
            holding.cancel_scope.cancel()
        watching.cancel_scope.cancel()
    return tracker.report(load)
