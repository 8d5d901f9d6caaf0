"""Mail in the simulator: identities' devices and enclaves' nodes as mail clients (MBX-1..MBX-4, CMI-4).

The driver plays every client of the mailboxes a scenario declares, with
the real envelope code and the real chain, and models only what no chain
shows: when a device is online and how long a notification takes.

Real: a sender seals each envelope (``seal_direct``, ``seal_group``) to the
devices the recipient's mailbox lists in the *final* chain state when it
sends, and submits a signed transaction calling ``mailbox.send`` with the
sealed bytes as a literal. A device opens what it fetched with its own key
(``open_direct``) or with the conversation keys handed to it
(``open_group``), and acknowledges in a transaction signed by its account
(``mailbox.ack``); the mailbox's native method purges a burn-on-read
envelope on its last acknowledgement. A janitor (the mailbox's identity)
purges a TTL envelope once due. Sealing entropy and conversation keys come
from ``random.Random(f"mail/{seed}/...")``, so a run is reproducible byte
for byte.

Modelled: a final block's new envelopes notify the target mailbox's
subscribers (MBX-4: the ``["envelope", mailbox, seq, sender, size]`` log
entry of an open transaction; a mixed transaction's log is only a hash,
TX-4, so there the mailbox's published updates serve) after one network
latency of the run's model. A device is online or not for each
``mail_poll_ms`` slot (with chance ``mail_online``, a deterministic draw per
device and slot); an online device syncs on the notification, an offline
one at its first online poll. A sync reads the mailbox as the chain
finalised it, in sequence order.

Group DMs follow the seed's design (seeds/003): one conversation key per
participant set, handed to every participant's devices in a direct
envelope; each message is then a group envelope written into every
participant's own mailbox (MBX-3). When any participant's devices change,
the next message hands over a fresh key under a new conversation id, so a
device registered later reads only from its registration on, and a removed
one reads nothing new (forward-only). A device acknowledges every envelope
it is a target of once processed, read or not (an envelope sealed just
before its registration changed cannot be read by it), so burn on read can
go on; unreadable targets are counted.

Enclave-to-enclave data (CMI-4) is a MIXED transaction on the sending
enclave's shard: sent by one of its enclave accounts, which it declares,
with the target enclave's public mailbox (L2L brings that account over,
L2L-5), paid by a named public account. The sending enclave's node seals
the envelope off chain to the target's nodes, the mailbox's devices.

What the driver records is in ``sagachain.sim.mail_report``: delivery
latencies, acknowledgements, purges per retention policy, live envelopes and
bytes per mailbox over time, and the observer log: what the public chain
shows of each envelope.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sagachain.core.block import Block, MixedEntry, OpenEntry
from sagachain.core.encoding import hash_value
from sagachain.core.envelope import group_key_payload, open_direct, open_group, parse, read_group_key, seal_direct, seal_group
from sagachain.core.keys import KeyPair
from sagachain.core.mail_calls import ack_script, add_device_script, purge_script, remove_device_script, send_script
from sagachain.core.mailbox import ENVELOPE_CLASS_ID, MAILBOX_CLASS_ID, EnvelopeRecord, MailboxHead, envelope_id, envelope_of, head_of_mailbox, mailbox_id
from sagachain.core.roster import BURN_ON_READ, TTL
from sagachain.core.tx import Transaction, make_transaction
from sagachain.errors import InputError
from sagachain.sim.mail_scenario import ADD, DEVICE, DM, ENCLAVE_MAIL, GROUP, MailAction
from sagachain.world.declarations import REAL

if TYPE_CHECKING:
    from sagachain.sim.runner import Simulation

ENCLAVE_GAS_LIMIT = 100_000  # a mixed transaction is charged GAS-3 (block average, floor), not its own gas
RETRIES = 2  # a send refused because the devices changed under it is sealed again, this many times


@dataclass
class Message:
    """One message a scenario sent: its text, the canary planted in it, when it was sent."""

    index: int
    kind: str  # dm, group, enclave
    text: str
    canary: str
    submitted: int

    @property
    def payload(self) -> bytes:
        return f"{self.text}\n{self.canary}".encode()


@dataclass
class Letter:
    """One envelope the driver wrote into one mailbox, and how it went."""

    message: int
    role: str  # dm, mirror, handover, group, enclave
    mailbox: bytes
    seq: int = 0
    final: int | None = None
    failed: str = ""
    entry: str = ""  # open or mixed
    shard: str = ""
    size: int = 0
    targets: tuple[bytes, ...] = ()
    opened: dict[bytes, int] = field(default_factory=dict)  # device -> when it read it


@dataclass
class Client:
    """A device of an identity or a node of an enclave: its keys, its reading position, its group keys."""

    device: bytes
    mailbox: bytes
    seed: bytes  # Ed25519 seed of the device key, to open its boxes
    account: bytes  # the account acknowledging for it
    phase: int
    cursor: int = 1
    sync_at: int | None = None
    group_keys: dict[bytes, bytes] = field(default_factory=dict)
    unacked: dict[int, int] = field(default_factory=dict)  # seq -> envelope size, processed but not yet acknowledged
    pending: set[int] = field(default_factory=set)  # in an ack transaction not final yet
    probes: int = 0  # envelopes it was not a target of, tried anyway
    breaches: int = 0  # ... and could read: must stay 0 (forward-only)


@dataclass
class Box:
    """A mailbox the driver watches, with its live contents as the chain holds them."""

    name: str
    id: bytes
    retention: str
    ttl: int
    manager: bytes | None  # the identity managing it (None: an enclave's)
    payer: bytes | None  # who pays its clients' acknowledgements and its purges
    live: int = 0
    bytes_live: int = 0
    written: int = 0
    bytes_written: int = 0
    peak: int = 0
    peak_bytes: int = 0
    purged: int = 0


@dataclass
class Conversation:
    """A group DM's current key epoch: the group id, its key, and the devices it was handed to."""

    group: bytes
    key: bytes
    handed: dict[bytes, tuple[bytes, ...]]  # mailbox -> devices
    epoch: int


@dataclass
class Job:
    """A send the driver may have to redo (sealed again for the devices now registered)."""

    action: MailAction
    message: Message
    attempt: int = 0


@dataclass
class Pending:
    """A transaction of the driver's not final yet: what it was for."""

    purpose: str  # send, ack, purge, device_add, device_remove
    job: Job | None = None
    letters: list[Letter] = field(default_factory=list)
    client: Client | None = None
    seqs: tuple[int, ...] = ()


class MailDriver:
    """Plays a scenario's mail: see the module docstring. The Simulation owns one when the scenario mails."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.sc = sim.sc
        self.world = sim.world
        self.chain = sim.chain
        if self.sc.crypto != REAL:
            raise InputError("mail needs real keys to seal envelopes (MBX-1); drop s.crypto_mode('modelled') or the mail", rule="MBX-1")
        seed = self.sc.seed
        self.poll_ms, self.online = self.sc.mail_clients_model
        self.entropy = random.Random(f"mail/{seed}/seal").randbytes
        self.notify_rng = random.Random(f"mail/{seed}/notify")
        self.latency = self.sc.resolved_network().latency
        self.nonces: Counter[bytes] = Counter(self.world.account(d.sender) for d in self.sc.txs)  # after the scenario's own
        self.boxes: dict[bytes, Box] = {}
        self.clients: dict[bytes, Client] = {}
        self.messages: list[Message] = []
        self.letters: list[Letter] = []
        self.by_tx: dict[bytes, Pending] = {}
        self.by_envelope: dict[tuple[bytes, int], Letter] = {}
        self.conversations: dict[tuple[str, ...], Conversation] = {}
        self.observed: list[dict[str, Any]] = []
        self.series: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.purges: Counter[str] = Counter()
        self.residence: dict[str, list[int]] = {}  # retention -> ms from arrival to purge, per envelope
        self.secrets: list[bytes] = []  # group keys handed over: must appear in no public byte either
        self._identities()
        self._enclave_mailboxes()

    # -- set-up --------------------------------------------------------------------

    def _identities(self) -> None:
        keys = self.world.account_keys
        for name, decl in self.sc.identities.items():
            identity = self.world.account(name)
            mid = mailbox_id(identity)
            self.boxes[mid] = Box(f"{name}.mailbox", mid, decl.retention, decl.ttl_ms, identity, identity)
            for device in (*decl.devices, *decl.spare):
                aid = self.world.account(device)
                key = keys[aid]
                assert isinstance(key, KeyPair)
                self.clients[aid] = Client(aid, mid, key.seed, aid, self._phase(aid))

    def _enclave_mailboxes(self) -> None:
        for enclave in self.sc.enclaves:
            mid = mailbox_id(enclave)
            head = self.head(mid)
            if head is None:
                continue
            self.boxes[mid] = Box(f"{enclave}.mailbox", mid, head.retention, head.ttl, None, None)
            for device in head.devices:
                node_key = self.world.node_keys.get(device.id)
                if isinstance(node_key, KeyPair) and node_key.public == device.key and device.account in self.world.account_keys:
                    self.clients[device.id] = Client(device.id, mid, node_key.seed, device.account, self._phase(device.id))

    def start(self) -> None:
        """Schedule the scenario's mail actions and the sampling of the mailboxes."""
        for action in sorted(self.sc.mail_actions, key=lambda a: a.at):  # stable: ties in declaration order
            self.sim.events.at(action.at, lambda a=action: self.act(a))
        self.sim.events.at(self.sc.timing.sample, self._sample, priority=1)

    # -- the model of devices ------------------------------------------------------

    def _phase(self, device: bytes) -> int:
        return int.from_bytes(hash_value(["mail-phase", self.sc.seed, device])[:4], "big") % self.poll_ms

    def is_online(self, client: Client, time: int) -> bool:
        slot = (time - client.phase) // self.poll_ms
        draw = int.from_bytes(hash_value(["mail-online", self.sc.seed, client.device, slot])[:8], "big") / 2**64
        return draw < self.online

    def next_online_poll(self, client: Client, time: int) -> int | None:
        """The first poll after ``time`` at which ``client`` is online; None if it never is in the run."""
        slot = (time - client.phase) // self.poll_ms + 1
        while (poll := client.phase + slot * self.poll_ms) <= self.sc.timing.duration:
            if self.is_online(client, poll):
                return poll
            slot += 1
        return None

    # -- actions -------------------------------------------------------------------

    def act(self, action: MailAction) -> None:
        now = self.sim.events.now
        if action.kind == DEVICE:
            self._device(action)
            return
        kind = {DM: "dm", GROUP: "group", ENCLAVE_MAIL: "enclave"}[action.kind]
        index = len(self.messages)
        canary = "canary-" + hash_value(["mail-canary", self.sc.seed, index]).hex()[:20]
        message = Message(index, kind, action.args["text"], canary, now)
        self.messages.append(message)
        self.counts[f"messages_{kind}"] += 1
        self.counts["mirrored"] += bool(action.args.get("mirror"))
        self._send(Job(action, message))

    def _send(self, job: Job) -> None:
        try:
            self._seal_for(job)
        except _NoDevice:
            self.counts["undeliverable"] += 1  # a mailbox with no device registered: nothing to seal to

    def _seal_for(self, job: Job) -> None:
        kind, args = job.action.kind, job.action.args
        if kind == DM:
            sender = self.world.account(args["sender"])
            parts = [(mailbox_id(self.world.account(args["recipient"])), "dm")]
            if args["mirror"]:
                parts.append((mailbox_id(sender), "mirror"))
            self._seal_and_submit(job, sender, sender, [(mid, role, self._direct(sender, mid, job.message.payload)) for mid, role in parts])
        elif kind == GROUP:
            self._group(job)
        else:
            self._enclave_mail(job)

    def _direct(self, sender: bytes, mid: bytes, payload: bytes) -> bytes:
        head = self.head(mid)
        assert head is not None
        if not head.devices:
            raise _NoDevice(mid)
        key = self.world.account_keys[sender]
        assert isinstance(key, KeyPair)
        return seal_direct(sender=key, mailbox=mid, devices=[(d.id, d.key) for d in head.devices], payload=payload, entropy=self.entropy)

    def _group(self, job: Job) -> None:
        args = job.action.args
        members = tuple(args["participants"])
        sender = self.world.account(args["sender"])
        mids = [mailbox_id(self.world.account(m)) for m in members]
        devices = {mid: tuple(d.id for d in self.head(mid).devices) for mid in mids}  # type: ignore[union-attr]
        conv = self.conversations.get(members)
        if conv is None or conv.handed != devices:
            epoch = conv.epoch + 1 if conv else 1
            group = hash_value(["mail-group", self.sc.seed, list(members), epoch])[:16]
            conv = Conversation(group, self.entropy(32), devices, epoch)
            self.secrets.append(conv.key)
            handover = group_key_payload(conv.group, conv.key, [self.world.account(m) for m in members])
            self._seal_and_submit(job, sender, sender, [(mid, "handover", self._direct(sender, mid, handover)) for mid in mids])
            self.conversations[members] = conv
            self.counts["group_keys"] += 1
        key = self.world.account_keys[sender]
        assert isinstance(key, KeyPair)
        sealed = [
            (mid, "group", seal_group(sender=key, mailbox=mid, group=conv.group, group_key=conv.key, payload=job.message.payload, entropy=self.entropy))
            for mid in mids
        ]
        self._seal_and_submit(job, sender, sender, sealed)

    def _enclave_mail(self, job: Job) -> None:
        args = job.action.args
        source, target = args["from_enclave"], args["to_enclave"]
        name = args["account"] or next((a.name for a in self.sc.accounts.values() if a.enclave == source), None)
        if name is None:
            raise InputError(f"enclave_mail from {source!r}: the enclave has no enclave account to send from; declare one", rule="CMI-4")
        agent, payer = self.world.account(name), self.world.account(args["payer"])
        mid = mailbox_id(target)
        box = self.boxes.get(mid)
        if box is None:
            raise InputError(f"enclave_mail to {target!r}: the enclave has no mailbox (it needs a roster: real crypto)", rule="MBX-1")
        box.payer = box.payer or payer  # pays the target nodes' acknowledgements and the TTL purges
        self._seal_and_submit(job, agent, payer, [(mid, "enclave", self._direct(agent, mid, job.message.payload))], accounts={"me": agent})

    def _seal_and_submit(self, job: Job, sender: bytes, payer: bytes, sealed: list[tuple[bytes, str, bytes]], accounts: dict[str, bytes] | None = None) -> None:
        """One transaction sending each (mailbox, role, sealed envelope)."""
        script, mailboxes, gas = send_script([(mid, envelope) for mid, _, envelope in sealed])
        declared = {**(accounts or {}), **mailboxes}
        if accounts:  # mixed: charged the block's GAS-3 figure, which must fit the limit
            gas = max(gas, ENCLAVE_GAS_LIMIT)
        tx = self._submit(sender, payer, declared, script, gas)
        letters = [Letter(job.message.index, role, mid, size=len(envelope)) for mid, role, envelope in sealed]
        self.letters.extend(letters)
        self.by_tx[tx.id] = Pending("send", job, letters)

    def _device(self, action: MailAction) -> None:
        args = action.args
        identity = self.world.account(args["identity"])
        device = self.world.account(args["device"])
        mid = mailbox_id(identity)
        if args["op"] == ADD:
            script, gas = add_device_script(device, self.world.account_keys[device].public)
        else:
            script, gas = remove_device_script(device)
        tx = self._submit(identity, identity, {"m": mid}, script, gas)
        self.by_tx[tx.id] = Pending(f"device_{args['op']}")
        self.counts[f"device_{args['op']}"] += 1

    def _submit(self, sender: bytes, payer: bytes, accounts: dict[str, bytes], script: str, gas_limit: int) -> Transaction:
        queued = (q.tx.nonce for m in self.sim.machines.values() for q in m.queue if q.tx.sender == sender)
        nonce = max(self.nonces[sender], self.chain.nonces.get(sender, 0), *queued) + 1  # others may sign as sender too
        while nonce in self.sim.void.get(sender, ()):
            nonce += 1
        self.nonces[sender] = nonce
        key = self.world.account_keys[sender]
        tx = make_transaction(key=key, sender=sender, nonce=self.nonces[sender], gas_limit=gas_limit, gas_payer=payer, accounts=accounts, script=script)
        self.sim.arrive(tx)
        return tx

    # -- final blocks --------------------------------------------------------------

    def on_final(self, block: Block) -> None:
        """A block the chain honoured: settle the driver's transactions, count arrivals, acks
        and purges, log what an observer sees, and notify the subscribers of new envelopes."""
        now = self.sim.events.now
        for entry in block.entries:
            if not isinstance(entry, OpenEntry | MixedEntry):
                continue
            mine = self.by_tx.pop(entry.tx.id, None)
            ok = entry.ok if isinstance(entry, OpenEntry) else True  # a mixed entry's outcome is the enclave's secret
            if mine is not None:
                self._settle(mine, entry, ok, block, now)
            if not ok:
                continue
            notices = []
            for update in entry.updates:
                value = update.value
                if value is None or value.class_id != ENVELOPE_CLASS_ID or value.owner not in self.boxes:
                    continue
                record = envelope_of(value)
                assert record is not None
                box = self.boxes[value.owner]
                if not record.acked and not record.purged:
                    self._arrived(box, record, entry, block, now)
                    notices.append((box, record))
                elif record.purged:
                    if record.purged == BURN_ON_READ:  # purged by its last acknowledgement
                        self._observe("ack", block, entry, box, record, ", ".join(self._name(d) for d in record.acked))
                    self._purged(box, record, block)
                else:
                    self._observe("ack", block, entry, box, record, ", ".join(self._name(d) for d in record.acked))
            if isinstance(entry, OpenEntry):  # MBX-4: the log entries are what subscribers are told
                told = {(bytes(item[1]), int(item[2])) for item in entry.log if isinstance(item, list) and item and item[0] == "envelope"}
                notices = [(box, record) for box, record in notices if (box.id, record.seq) in told]
            for box, record in notices:
                self._notify(box, record, block.shard, now)

    def _settle(self, mine: Pending, entry: OpenEntry | MixedEntry, ok: bool, block: Block, now: int) -> None:
        job, letters = mine.job, mine.letters
        written = {u.value.owner: envelope_of(u.value) for u in entry.updates if u.value is not None and u.value.class_id == ENVELOPE_CLASS_ID}
        ok = ok and all(letter.mailbox in written for letter in letters)  # a failed mixed send publishes no envelope
        self.counts[f"{mine.purpose}_txs"] += 1
        if mine.client is not None:  # an acknowledgement: done, or to be sent again at the next sync
            mine.client.pending.difference_update(mine.seqs)
            for seq in mine.seqs if ok else ():
                mine.client.unacked.pop(seq, None)
        if not ok:
            self.counts[f"failed_{mine.purpose}"] += 1
            for letter in letters:
                letter.failed = str(getattr(entry, "error", "")) or "failed"
            if job is not None and job.attempt < RETRIES:
                conv = self.conversations.get(tuple(job.action.args.get("participants", ())))
                if conv is not None:
                    conv.handed = {}  # hand a fresh key over again, under the next conversation id
                job.attempt += 1
                self.counts["resent"] += 1
                self._send(job)
            return
        for letter in letters:
            letter.final, letter.shard, letter.entry = now, block.shard, "mixed" if isinstance(entry, MixedEntry) else "open"
            record = written[letter.mailbox]
            assert record is not None
            letter.seq, letter.targets = record.seq, record.targets
            self.by_envelope[(letter.mailbox, record.seq)] = letter

    def _arrived(self, box: Box, record: EnvelopeRecord, entry: OpenEntry | MixedEntry, block: Block, now: int) -> None:
        box.live += 1
        box.bytes_live += record.size
        box.written += 1
        box.bytes_written += record.size
        box.peak, box.peak_bytes = max(box.peak, box.live), max(box.peak_bytes, box.bytes_live)
        envelope = parse(record.sealed)
        group = envelope.group.hex()[:12] if envelope is not None and envelope.group else ""
        boxes = len(envelope.boxes) if envelope is not None else 0
        self._observe("envelope", block, entry, box, record, f"group {group}" if group else f"{boxes} device boxes")
        if box.retention == TTL and box.payer is not None:
            self.sim.events.at(record.time + box.ttl + 1, lambda: self._purge_due(box, record.seq))

    def _purged(self, box: Box, record: EnvelopeRecord, block: Block) -> None:
        box.live -= 1
        box.bytes_live -= record.size
        box.purged += 1
        self.purges[record.purged] += 1
        self.residence.setdefault(record.purged, []).append(record.purged_at - record.time)
        for client in self._clients_of(box.id):
            if record.seq in client.unacked and record.seq not in client.pending:
                del client.unacked[record.seq]
        self.observed.append(self._row("purge", block, None, box, record, record.purged))

    def _observe(self, event: str, block: Block, entry: OpenEntry | MixedEntry, box: Box, record: EnvelopeRecord, note: str) -> None:
        self.observed.append(self._row(event, block, entry, box, record, note))

    def _row(self, event: str, block: Block, entry: OpenEntry | MixedEntry | None, box: Box, record: EnvelopeRecord, note: str) -> dict[str, Any]:
        """One line of what the public chain shows; names are the genesis's public account names."""
        head = self.head(box.id)
        return {
            "event": event,
            "block_time_ms": block.header.time,
            "shard": block.shard,
            "entry": "" if entry is None else ("mixed" if isinstance(entry, MixedEntry) else "open"),
            "tx": "" if entry is None else entry.tx.id.hex()[:16],
            "signer": "" if entry is None else self._name(entry.tx.sender),
            "sender": self._name(record.sender),
            "mailbox": box.name,
            "recipient": self._name(head.recipient) if head is not None else "",
            "seq": record.seq,
            "size": record.size,
            "note": note,
        }

    def _name(self, account: bytes) -> str:
        record = self.chain.accounts.get(account)
        return record.name if record is not None else account.hex()[:12]

    # -- delivery ------------------------------------------------------------------

    def _clients_of(self, mid: bytes) -> list[Client]:
        return [c for c in self.clients.values() if c.mailbox == mid]

    def _notify(self, box: Box, record: EnvelopeRecord, shard: str, now: int) -> None:
        for client in self._clients_of(box.id):
            if client.device not in record.targets:
                continue
            told = now + round(self.latency.draw(self.notify_rng, shard, shard))
            when = told if self.is_online(client, told) else self.next_online_poll(client, told)
            if when is None or (client.sync_at is not None and client.sync_at <= when):
                continue
            client.sync_at = when
            self.sim.events.at(when, lambda c=client: self.sync(c))

    def sync(self, client: Client) -> None:
        """The device fetches its mailbox as finalised, reads what is new, and acknowledges."""
        now = self.sim.events.now
        if client.sync_at == now:
            client.sync_at = None
        head = self.head(client.mailbox)
        if head is None or head.device(client.device) is None:
            return  # not registered (yet, or any more)
        self.counts["syncs"] += 1
        for seq in range(client.cursor, head.next_seq):
            client.cursor = seq + 1
            record = envelope_of(self.chain.objects.get(envelope_id(client.mailbox, seq)))
            if record is None:
                continue
            target = client.device in record.targets
            if record.purged:
                if target and client.device not in record.acked:
                    self.counts["expired_unread"] += 1  # a TTL purge came first
                continue
            read = self._open(client, record)
            if not target:
                client.probes += 1
                client.breaches += read
                continue
            letter = self.by_envelope.get((client.mailbox, seq))
            if letter is not None and read:
                letter.opened.setdefault(client.device, now)
            self.counts["opened" if read else "unreadable"] += 1
            if client.device not in record.acked:
                client.unacked[seq] = record.size
        self._acknowledge(client)

    def _open(self, client: Client, record: EnvelopeRecord) -> bool:
        envelope = parse(record.sealed)
        if envelope is None:
            return False
        if envelope.group:
            opened = open_group(record.sealed, mailbox=client.mailbox, group_keys=client.group_keys)
        else:
            opened = open_direct(record.sealed, mailbox=client.mailbox, device=client.device, device_seed=client.seed)
            handover = read_group_key(opened.payload) if opened is not None else None
            if handover is not None:
                client.group_keys[handover[0]] = handover[1]
        if opened is None:
            return False
        letter = self.by_envelope.get((client.mailbox, record.seq))
        if letter is not None and letter.role != "handover" and opened.payload != self.messages[letter.message].payload:
            self.counts["garbled"] += 1
        return True

    def _acknowledge(self, client: Client) -> None:
        box = self.boxes[client.mailbox]
        todo = sorted(seq for seq in client.unacked if seq not in client.pending)
        if not todo or box.payer is None:
            return
        script, gas = ack_script(client.device, {seq: client.unacked[seq] for seq in todo})
        tx = self._submit(client.account, box.payer, {"m": client.mailbox}, script, gas)
        client.pending.update(todo)
        self.by_tx[tx.id] = Pending("ack", client=client, seqs=tuple(todo))

    def _purge_due(self, box: Box, seq: int) -> None:
        """The janitor purges a TTL envelope once due (MBX-2); anyone may, the identity does."""
        record = envelope_of(self.chain.objects.get(envelope_id(box.id, seq)))
        if record is None or record.purged or box.payer is None:
            return
        janitor = box.manager or box.payer
        script, gas = purge_script(seq, record.size)
        tx = self._submit(janitor, box.payer, {"m": box.id}, script, gas)
        self.by_tx[tx.id] = Pending("purge")

    # -- state ---------------------------------------------------------------------

    def head(self, mid: bytes) -> MailboxHead | None:
        obj = self.chain.objects.get(mid)
        return head_of_mailbox(obj) if obj is not None and obj.class_id == MAILBOX_CLASS_ID else None

    def _sample(self) -> None:
        self.sample(self.sim.events.now)
        self.sim.events.after(self.sc.timing.sample, self._sample, priority=1)

    def sample(self, now: int) -> None:
        """One row of live envelopes and bytes per mailbox (no row twice for one instant)."""
        if self.series and self.series[-1]["t_ms"] == now:
            return
        self.series.append({"t_ms": now, "boxes": {box.name: (box.live, box.bytes_live) for box in self.boxes.values()}})


class _NoDevice(Exception):
    """A mailbox lists no device to seal to (every device was dropped)."""


def mail_driver(sim: Simulation) -> MailDriver | None:
    """The mail driver of a run whose scenario declares mail, else None."""
    return MailDriver(sim) if sim.sc.mail_actions else None
