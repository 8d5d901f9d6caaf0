"""A member node's epoch keys, followed from the chain (MEM-3, MEM-4).

No enclave key is configured or handed over: each member derives every
epoch key it is entitled to from the public key material the roster
publishes (one ``RosterEpoch`` object per epoch) and its own node seed. So a
node that joins opens the epochs from its join on, and a removed node simply
finds no box for it in the next epoch: nothing needs to be taken away.

The follower keeps its own copy of the public key schedule, because opening
epoch ``e`` needs the schedule as it stood before ``e`` (the chain keeps only
the latest), and it walks the epochs in order whenever the roster's head moves.

A node whose key was rotated keeps its earlier seeds (``node.key.previous``):
the boxes of the epochs before the rotation were sealed to the old key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.epoch_keys import START, Change, Keyring, KeySchedule
from sagachain.core.keys import KeyPair
from sagachain.core.ledger import ChainState
from sagachain.core.roster import epoch_id, epoch_of, head_of, read_rekey, roster_id
from sagachain.errors import InputError


@dataclass
class EnclaveKeys:
    """The epoch keys ``node`` holds for ``enclave``; ``seeds`` are its node seeds, oldest first."""

    enclave: str
    node: bytes
    seeds: list[bytes]
    epoch: int = 0  # the last epoch followed (held or not)
    schedule: KeySchedule | None = None
    ring: Keyring | None = None
    refused: dict[int, str] = field(default_factory=dict)  # epochs whose material this node could not use, and why

    def __post_init__(self) -> None:
        self._by_public = {KeyPair(seed).public: seed for seed in self.seeds}

    @property
    def keys(self) -> dict[int, bytes]:
        return self.ring.keys if self.ring is not None else {}

    def latest(self) -> tuple[int, bytes] | None:
        """The newest epoch this node holds the key of, if it is a member of the latest epoch."""
        if self.epoch in self.keys:
            return self.epoch, self.keys[self.epoch]
        return None

    def follow(self, chain: ChainState) -> list[int]:
        """Absorb the epochs the roster published since the last call; the epochs newly opened."""
        head = head_of(chain.objects.get(roster_id(self.enclave)))
        if head is None:
            return []
        if self.schedule is None:
            self.schedule = KeySchedule(self.enclave, head.strategy)
            self.ring = Keyring(self.enclave, self.node, self.seeds[0])
        assert self.ring is not None
        opened = []
        while self.epoch < head.epoch:
            record = epoch_of(chain.objects.get(epoch_id(self.enclave, self.epoch + 1)))
            rekey = read_rekey(record.rekey) if record is not None else None
            if rekey is None or self.schedule.problem(rekey) is not None:
                return opened  # the chain honoured no such epoch: it cannot be (MEM-3 judged it); wait
            own = self._own_key(rekey.change)
            if own is not None:
                self.ring.rotate(self._by_public[own])
            try:
                if self.ring.absorb(self.schedule, rekey) is not None:
                    opened.append(rekey.epoch)
            except InputError as exc:  # a committer sealed keys that do not match: this member holds none
                self.refused[rekey.epoch] = str(exc)
            self.schedule.apply(rekey)
            self.epoch = rekey.epoch
        return opened

    def _own_key(self, change: Change) -> bytes | None:
        """The key an epoch's change gives this node (it joins, rotates, or founds), if it is one
        of this node's seeds: the keyring must hold that seed before it absorbs the change."""
        if change.op == START:
            key = next((m.key for m in change.members if m.node == self.node), None)
        else:
            key = change.key if change.node == self.node else None
        return key if key in self._by_public else None
