"""Mail declarations of the scenario API: DMs, group DMs, devices, enclave-to-enclave data.

``Scenario`` inherits these methods, so a scenario file calls ``s.dm(...)``
like any other declaration. Like the rest of the API they record intent
only, as ``MailAction``s in ``s.mail_actions``; ``sagachain.sim.mail``
plays them in the run. Who may talk to whom is checked here, at the edge,
with the argument and the rule named; what the chain accepts is checked by
the chain (MBX-1..MBX-4, CMI-4).

Identities and their device accounts come from ``Scenario.identity``; a
device that joins later is one of the identity's ``spare_devices``: its
account exists from genesis, but the mailbox does not list it until a
``s.device(at, identity, "add")`` registers it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sagachain.errors import InputError

ADD, REMOVE = "add", "remove"
DM, GROUP, DEVICE, ENCLAVE_MAIL = "dm", "group", "device", "enclave"


@dataclass(frozen=True, slots=True, kw_only=True)
class MailAction:
    """One declared mail event at virtual time ``at``; ``args`` depend on ``kind``."""

    at: int
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


class MailDeclarations:
    """The mail part of ``Scenario`` (see ``sagachain.sim.scenario``)."""

    identities: dict[str, Any]
    enclaves: dict[str, tuple[list[str], int]]
    accounts: dict[str, Any]
    rng: random.Random
    mail_actions: list[MailAction]
    mail_clients_model: tuple[int, float] = (2_000, 0.8)  # see mail_clients

    def mail_clients(self, poll_ms: int = 2_000, online: float = 0.8) -> None:
        """How the mail clients (devices, enclave nodes) behave: each is online or not for each
        ``poll_ms`` slot, with chance ``online``. Online, it syncs on a notification (MBX-4);
        offline, at its first online poll."""
        if not isinstance(poll_ms, int) or poll_ms < 1:
            raise InputError(f"mail_clients: poll_ms={poll_ms!r} must be an int of 1 ms or more")
        if not 0.0 <= online <= 1.0:
            raise InputError(f"mail_clients: online={online!r} must be a chance between 0 and 1")
        self.mail_clients_model = (poll_ms, float(online))

    def dm(self, at: int, sender: str, recipient: str, text: str, mirror: bool = False) -> None:
        """A direct message from identity ``sender`` to identity ``recipient`` (MBX-1, MBX-3):
        sealed to the devices ``recipient``'s mailbox lists when it is sent; with ``mirror``
        also sealed into ``sender``'s own mailbox, for the sender's other devices."""
        self._when(at, "dm")
        self._identity(sender, "sender", "dm")
        self._identity(recipient, "recipient", "dm")
        if sender == recipient:
            raise InputError(f"dm: sender and recipient are both {sender!r}; a note to oneself is dm(..., mirror=True) to someone", rule="MBX-3")
        self._text(text, "dm")
        self.mail_actions.append(MailAction(at=at, kind=DM, args={"sender": sender, "recipient": recipient, "text": text, "mirror": bool(mirror)}))

    def group_dm(self, at: int, sender: str, participants: list[str], text: str) -> None:
        """A group message among ``participants`` (the sender is one of them, added if missing).

        The first message to a set of participants creates the conversation: a
        fresh conversation key is handed to every participant's devices in a
        direct envelope, then the message goes as a group envelope into each
        participant's own mailbox (MBX-3: no shared log). When the devices of a
        participant change, the next message hands over a new key (forward-only).
        """
        self._when(at, "group_dm")
        self._identity(sender, "sender", "group_dm")
        members = sorted({sender, *participants})
        for name in members:
            self._identity(name, "participants", "group_dm")
        if len(members) < 3:
            raise InputError(f"group_dm: participants {members} are {len(members)} identities; a group has 3 or more, use dm for two", rule="MBX-3")
        self._text(text, "group_dm")
        self.mail_actions.append(MailAction(at=at, kind=GROUP, args={"sender": sender, "participants": members, "text": text}))

    def device(self, at: int, identity: str, op: str, device: str | None = None) -> str:
        """Register (``op="add"``) or drop (``"remove"``) a device of ``identity``'s mailbox at ``at``.

        ``add`` takes the next unused spare device account (``Scenario.identity``'s
        ``spare_devices``) unless ``device`` names one; ``remove`` drops the last
        device registered at genesis unless ``device`` names one. A device added
        later reads only what is sent after it is registered (forward-only).
        Returns the device account's name.
        """
        self._when(at, "device")
        decl = self._identity(identity, "identity", "device")
        mine = [*decl.devices, *decl.spare]
        if op not in (ADD, REMOVE):
            raise InputError(f"device: op {op!r} is not {ADD!r} or {REMOVE!r}", rule="MBX-2")
        if device is not None and device not in mine:
            raise InputError(f"device: {device!r} is not a device account of {identity!r}; its devices: {mine}", rule="MBX-2")
        done = [a.args["device"] for a in self.mail_actions if a.kind == DEVICE and a.args["identity"] == identity and a.args["op"] == op]
        if device is None:
            pool = list(decl.spare) if op == ADD else list(reversed(decl.devices))
            free = [d for d in pool if d not in done]
            if not free:
                what = "spare device left: declare more with identity(..., spare_devices=N)" if op == ADD else "genesis device left to remove"
                raise InputError(f"device: {identity!r} has no {what}", rule="MBX-2")
            device = free[0]
        elif device in done:
            raise InputError(f"device: {device!r} is already declared to {op} once", rule="MBX-2")
        self.mail_actions.append(MailAction(at=at, kind=DEVICE, args={"identity": identity, "op": op, "device": device}))
        return device

    def mail_traffic(
        self,
        start: int,
        end: int,
        messages: int,
        identities: list[str] | None = None,
        group_share: float = 0.2,
        mirror_share: float = 0.3,
    ) -> None:
        """``messages`` DMs and group DMs among ``identities`` (default: all), at times drawn
        uniformly from [start, end) with the run's generator ``s.rng``: a share ``group_share``
        are group DMs of 3 or 4 participants, a share ``mirror_share`` of the DMs are mirrored."""
        pool = sorted(identities if identities is not None else self.identities)
        for name in pool:
            self._identity(name, "identities", "mail_traffic")
        if not 0 <= start < end:
            raise InputError(f"mail_traffic: start={start} and end={end} must satisfy 0 <= start < end")
        if messages < 0:
            raise InputError(f"mail_traffic: messages={messages} must be 0 or more")
        if len(pool) < 2:
            raise InputError(f"mail_traffic: identities {pool} must be 2 or more", rule="MBX-3")
        for name, share in (("group_share", group_share), ("mirror_share", mirror_share)):
            if not 0.0 <= share <= 1.0:
                raise InputError(f"mail_traffic: {name}={share} must be between 0 and 1")
        for n in range(messages):
            at = self.rng.randrange(start, end)
            words = " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(3, 40)))
            if len(pool) >= 3 and self.rng.random() < group_share:
                members = self.rng.sample(pool, min(len(pool), self.rng.randint(3, 4)))
                self.group_dm(at, members[0], members, f"group note {n}: {words}")
            else:
                sender, recipient = self.rng.sample(pool, 2)
                self.dm(at, sender, recipient, f"note {n} to {recipient}: {words}", mirror=self.rng.random() < mirror_share)

    def enclave_mail(self, at: int, from_enclave: str, to_enclave: str, text: str, payer: str, account: str | None = None) -> None:
        """Data from one enclave to another through the target's public mailbox (CMI-4).

        The sending enclave's node seals ``text`` off chain to the target
        enclave's nodes (its mailbox's devices) and sends it in a MIXED
        transaction on its own shard: the transaction touches the sending
        enclave account ``account`` (default: the first one declared in
        ``from_enclave``) and the target's mailbox, a public account that L2L
        brings to that shard (L2L-5). ``payer``, a funded public account, pays
        its gas (GAS-1: enclave accounts hold no coin), and also the target
        nodes' acknowledgements and the TTL purge.
        """
        self._when(at, "enclave_mail")
        for name, enclave in (("from_enclave", from_enclave), ("to_enclave", to_enclave)):
            if enclave not in self.enclaves:
                raise InputError(f"enclave_mail: {name}={enclave!r} is not a declared enclave; enclaves: {sorted(self.enclaves)}", rule="CMI-4")
        if from_enclave == to_enclave:
            raise InputError(f"enclave_mail: from_enclave and to_enclave are both {from_enclave!r}; inside an enclave, no mailbox is needed", rule="CMI-4")
        if payer not in self.accounts or self.accounts[payer].enclave is not None:
            raise InputError(f"enclave_mail: payer={payer!r} must be a declared public account", rule="GAS-1")
        if account is not None and (account not in self.accounts or self.accounts[account].enclave != from_enclave):
            raise InputError(f"enclave_mail: account={account!r} must be an enclave account of {from_enclave!r}", rule="CMI-4")
        self._text(text, "enclave_mail")
        args = {"from_enclave": from_enclave, "to_enclave": to_enclave, "text": text, "payer": payer, "account": account}
        self.mail_actions.append(MailAction(at=at, kind=ENCLAVE_MAIL, args=args))

    def _identity(self, name: str, argument: str, method: str) -> Any:
        decl = self.identities.get(name)
        if decl is None:
            raise InputError(f"{method}: {argument} names {name!r}, which is not an identity; declare it with s.identity({name!r}, ...)", rule="MBX-1")
        return decl

    @staticmethod
    def _when(at: int, method: str) -> None:
        if not isinstance(at, int) or at < 0:
            raise InputError(f"{method}: at={at!r} must be a virtual time in ms, 0 or later")

    @staticmethod
    def _text(text: str, method: str) -> None:
        if not isinstance(text, str) or not text:
            raise InputError(f"{method}: text must be a non-empty str, got {text!r}")


_WORDS = (
    "lunch", "tomorrow", "draft", "review", "ledger", "shard", "meeting", "photo", "call", "ticket", "budget",
    "release", "weekend", "coffee", "deadline", "notes", "invoice", "train", "garden", "concert",
)
