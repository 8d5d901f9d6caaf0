"""Mailbox calls from values: the script and the gas limit of a send, an ack, a purge, a device change.

Two callers write mailbox transactions: the simulator's mail driver
(``sagachain.sim.mail``) and a node's users (``sagachain mailbox``, through
``sagachain.mail_client``). A mailbox's native methods (MBX-1..MBX-4) charge
what these limits allow for, so both callers must ask for the same gas for the
same call, or a send that succeeds in a simulation would run out of gas on a
devnet. So the scripts and limits live here once, pure, beside
``sagachain.core.roster_calls``, below both drivers. Purges and device changes
are sent by the simulator only so far; they are here so that every mailbox
call is written one way.

Gas: twice the script's bytes (the literals are parsed and stored), plus
``SEND_CALL_GAS`` per call (the writes, the mailbox head, the log entry);
an acknowledgement or a purge also rewrites its envelope, three gas a byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sagachain.core.system import call_script

SEND_CALL_GAS = 3_000  # per send/ack/purge call, on top of twice the script's bytes: writes, the head, the log
MAILBOX_ALIAS = "m"  # the name a transaction on one mailbox gives it in its script
REWRITE_GAS = 3  # per byte of an envelope an ack or a purge rewrites (a tombstone under burn on read)


def send_script(sealed: Sequence[tuple[bytes, bytes]]) -> tuple[str, dict[str, bytes], int]:
    """The script, the declared accounts and a gas limit for one transaction sending each
    (mailbox, sealed envelope): one ``mN.send(...)`` line per mailbox, in order."""
    accounts = {f"{MAILBOX_ALIAS}{n}": mailbox for n, (mailbox, _) in enumerate(sealed)}
    script = "".join(call_script(f"{MAILBOX_ALIAS}{n}", "send", [envelope]) for n, (_, envelope) in enumerate(sealed))
    return script, accounts, 2 * len(script) + SEND_CALL_GAS * len(sealed)


def ack_script(device: bytes, sizes: Mapping[int, int]) -> tuple[str, int]:
    """The script acknowledging for ``device`` each envelope ``seq -> size`` of ``sizes``, in
    order, on the mailbox declared as ``m``, and its gas limit."""
    script = "".join(call_script(MAILBOX_ALIAS, "ack", [seq, device]) for seq in sizes)
    return script, 2 * len(script) + sum(REWRITE_GAS * size + SEND_CALL_GAS for size in sizes.values())


def purge_script(seq: int, size: int) -> tuple[str, int]:
    """The script purging envelope ``seq`` (``size`` bytes) of the mailbox ``m`` once due, and its gas limit."""
    return call_script(MAILBOX_ALIAS, "purge", [seq]), REWRITE_GAS * size + SEND_CALL_GAS


def add_device_script(device: bytes, key: bytes) -> tuple[str, int]:
    """The script registering ``device`` (its account acknowledges for it) with its key, and its gas limit."""
    script = call_script(MAILBOX_ALIAS, "add_device", [device, key, device])
    return script, 2 * len(script) + SEND_CALL_GAS


def remove_device_script(device: bytes) -> tuple[str, int]:
    """The script dropping ``device`` from the mailbox ``m``, and its gas limit."""
    script = call_script(MAILBOX_ALIAS, "remove_device", [device])
    return script, 2 * len(script) + SEND_CALL_GAS
