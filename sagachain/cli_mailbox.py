"""``sagachain mailbox`` and ``sagachain registry``: DMs between identities, and discovery (MBX-1..MBX-4, REG-1).

The commands are clients of a running node, like ``sagachain tx`` (the same
``--node``/``SAGACHAIN_NODE``, ``--node-key``, ``--json`` and exit statuses:
0 done; 1 the node refused, a transaction failed or was not final in time,
or the node could not be reached; 2 the arguments are wrong, nothing was
sent). Sealing and opening happen in this process (``sagachain.mail_client``);
the node only ever holds ciphertext. With ``--devnet DIR``, ``--as NAME``
picks an account's key from ``DIR/devnet.json`` and names stand for ids;
otherwise ``--key-file PATH --account ID`` gives the key and its account.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import trio
from rich.console import Console
from rich.table import Table
from rich.text import Text

from node.client import Client, Subscription, wait_final
from node.devnet import load_record
from node.messages import Receipt
from node.mail_events import ARRIVED, TOPIC
from node.wire import TxReceipt
from sagachain.cli_tx import _fail, _run, json_option, node_option, pin_option
from sagachain.core.mail_calls import ack_script, send_script
from sagachain.core.mailbox import Device, EnvelopeRecord, MailboxHead
from sagachain.core.tx import Transaction
from sagachain.errors import InputError
from sagachain.mail_client import (
    Actor,
    Letter,
    ack_problem,
    actor_from,
    device_of,
    envelope_changes,
    find_mailbox,
    lookup,
    name_of,
    owner_of_device,
    payload_of,
    read_envelopes,
    read_mail,
    seal_dm,
    sign,
    signer_known,
    unread,
)
from sagachain.tx_build import Devnet, hex_id
from sagachain.tx_view import message_json, plain, receipt_table, tx_receipt_table

devnet_option = click.option("--devnet", "devnet_dir", type=click.Path(path_type=Path, file_okay=False),
                             help="A devnet directory: its devnet.json names accounts, holds their keys, and gives the default --node.")
as_option = click.option("--as", "--from", "as_name", metavar="NAME", help="With --devnet: the account (identity or device) that acts and signs (--from, as in `tx send`, is the same).")
key_file_option = click.option("--key-file", type=click.Path(path_type=Path, dir_okay=False), help="A file holding the acting account's Ed25519 seed in hex.")
account_option = click.option("--account", "--sender", "account", metavar="ID", help="With --key-file: the account (hex id) the key signs for (--sender, as in `tx send`, is the same).")
payer_option = click.option("--payer", metavar="ACCOUNT", help="The public account that pays the gas (GAS-1); a name with --devnet.")
nonce_option = click.option("--nonce", type=click.IntRange(min=1), help="The signer's nonce (default: one past its last, as for `sagachain tx send`).")
wait_option = click.option("--wait", is_flag=True, help="Wait until the transaction is final and show what it did to each envelope.")
RECHECK = 1.0  # seconds between receipt checks while --wait waits: a refusal at execution has no block event
timeout_option = click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Seconds --wait waits.")


def _devnet(directory: Path | None) -> Devnet | None:
    try:
        return Devnet.load(directory) if directory is not None else None
    except InputError as exc:
        _fail(str(exc), 2)


def _resolve(devnet: Devnet | None, text: str, what: str) -> bytes:
    """An account given by devnet name or by 64 hex digits."""
    return devnet.resolve(text, what) if devnet is not None else hex_id(text, what)


def _connect(devnet: Devnet | None, address: str | None, node_key: str | None, ask: Callable[[Client], Awaitable[int]]) -> None:
    """Run ``ask`` against ``--node``, else the devnet's first node with its key pinned (as `tx send`)."""
    if address is None and devnet is not None and devnet.nodes:
        address, node_key = devnet.nodes[0].address, node_key or devnet.nodes[0].node_key
    _run(address, node_key, ask)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Submitted:
    """A transaction handed to the node, and with --wait where it ended: ``final`` (shard, height,
    index, ok) and ``envelopes``, its ``mail`` events read from that block; ``late`` is the
    receipt asked for when it was not final in time."""

    tx: Transaction
    receipt: TxReceipt
    final: dict[str, Any] | None = None
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    late: Receipt | None = None

    @property
    def status(self) -> int:
        if not self.receipt.accepted:
            return 1
        if self.late is not None:
            return 0 if self.late.status == "final" and self.late.ok else 1
        return 0 if self.final is None or self.final["ok"] else 1

    def to_json(self) -> dict[str, Any]:
        tree: dict[str, Any] = {"tx": self.tx.id, "receipt": message_json(self.late or self.receipt)}
        if self.final is not None:
            tree.update(final=self.final, envelopes=self.envelopes)
        return tree


def _recorded(done: Submitted, devnet: Devnet | None) -> Submitted:
    """Note an accepted transaction's nonce in the devnet's record, as `tx send` does."""
    if done.receipt.accepted and devnet is not None:
        devnet.record_nonce(done.tx.sender, done.tx.nonce)
    return done


async def _submit(client: Client, tx: Transaction, devnet: Devnet | None, wait: bool, timeout: float) -> Submitted:
    """Submit ``tx``; with ``wait``, wait for its final block and read what it did to envelopes."""
    if not wait:
        return _recorded(Submitted(tx, await client.submit(tx)), devnet)
    async with client.subscribe(["blocks"]) as events:  # before submitting: the block cannot slip by unseen
        done = _recorded(Submitted(tx, await client.submit(tx)), devnet)
        if not done.receipt.accepted:
            return done
        where = await _until_final(client, events, tx.id, timeout)
    if isinstance(where, Receipt):
        done.late = where
        return done
    shard, height, index, ok = where
    done.envelopes, error = await envelope_changes(client, tx.id, shard, height)
    done.final = {"shard": shard, "height": height, "index": index, "ok": ok, "error": error}
    return done


async def _until_final(client: Client, events: Subscription, tx_id: bytes, timeout: float) -> tuple[str, int, int, bool] | Receipt:
    """Where ``tx_id`` became final (shard, height, index, ok), told by a ``blocks`` event; or its
    receipt once the node refused it when it came to execute (GAS-1, a stale nonce), or after ``timeout``."""
    deadline = trio.current_time() + timeout
    while True:
        with trio.move_on_after(max(0.0, min(RECHECK, deadline - trio.current_time()))):
            data, index = await wait_final(events, tx_id)
            flags = data.get("ok") or []
            return str(data.get("shard")), int(data.get("height") or 0), index, bool(flags[index]) if index < len(flags) else False
        receipt = await client.receipt(tx_id)  # the last word, in case an event was missed
        if receipt.status == "final" and receipt.shard is not None:
            return receipt.shard, receipt.height, receipt.index, bool(receipt.ok)
        if receipt.status == "refused" or trio.current_time() >= deadline:
            return receipt


STATES = {"arrived": "arrived", "acked": "acknowledged", "purged": "purged (its last target device acknowledged)"}


def _print_submitted(console: Console, done: Submitted, labels: dict[bytes, str], timeout: float) -> None:
    """The human form of a submission: the receipt, and with --wait the block and each envelope's change."""
    console.print(f"transaction {done.tx.id.hex()}", soft_wrap=True, highlight=False, markup=False)
    console.print(tx_receipt_table(done.receipt))
    if done.late is not None:
        console.print(receipt_table(done.late))
        if done.late.status == "refused":
            Console(stderr=True).print(f"refused when it came to execute ({done.late.rule}): {done.late.reason}", style="red", markup=False)
        elif done.late.status != "final":
            Console(stderr=True).print(f"not final after {timeout} s (status {done.late.status}); check later with "
                                       f"`sagachain tx receipt {done.tx.id.hex()}`", style="red", markup=False)
    if done.final is None:
        return
    final = done.final
    outcome = "script succeeded" if final["ok"] else f"script failed: {final.get('error') or 'see the block'}"
    console.print(f"final in block {final['shard']} / {final['height']}, entry {final['index']}: {outcome}", markup=False, highlight=False)
    for event in done.envelopes:
        where = labels.get(event["mailbox"], event["mailbox"].hex()[:16])
        console.print(f"  envelope {event['seq']} in {where}: {STATES[event['change']]}; {event['acked']} of {event['targets']} "
                      f"target devices acknowledged, {event['size']} bytes", markup=False, highlight=False)


def _json(tree: Any) -> None:
    click.echo(json.dumps(plain(tree), sort_keys=True))


@click.group("mailbox")
def mailbox() -> None:
    """DMs between identities through their public mailboxes (MBX-1..MBX-4).

    An envelope is sealed in this process to the recipient's registered
    devices; the chain and the node see only the sender, the mailbox, the
    sequence number and the ciphertext's size. A device reads it with its
    own key, forward-only (nothing sent before it was registered), and
    acknowledges it; under burn-on-read the last acknowledgement purges it.

    \b
    Example:
        sagachain devnet up --dir devnet --enclave-shards 0 --nodes-per-shard 2 --identities 2
        sagachain mailbox send --devnet devnet --as id0 --to id1 --text "hello" --wait
        sagachain mailbox sync --devnet devnet --as id1.dev0 --ack --wait
        sagachain mailbox sync --devnet devnet --as id1.dev1 --follow
    """


# -- send ---------------------------------------------------------------------------------


@mailbox.command("send")
@devnet_option
@as_option
@key_file_option
@account_option
@click.option("--to", "recipients", multiple=True, required=True, metavar="IDENTITY",
              help="The recipient: an identity (a name with --devnet, or its account id) or a mailbox id; repeatable, one envelope per recipient.")
@click.option("--text", required=True, help="The message (UTF-8).")
@click.option("--mirror", is_flag=True, help="Also write a copy sealed to the sender's own devices into the sender's mailbox (MBX-3).")
@payer_option
@nonce_option
@wait_option
@timeout_option
@node_option
@pin_option
@json_option
def send(devnet_dir: Path | None, as_name: str | None, key_file: Path | None, account: str | None, recipients: tuple[str, ...], text: str,
         mirror: bool, payer: str | None, nonce: int | None, wait: bool, timeout: float, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Send a DM: seal TEXT to each recipient's registered devices and write it into their mailboxes.

    The devices are those the recipient's mailbox lists on the node now; the
    body is signed by the sender's key. One transaction, signed by the
    sender, carries every envelope (`mailbox.send`, one per mailbox). Several
    --to write one envelope into each recipient's own mailbox: there is no
    shared log (MBX-3). With --wait, shows each envelope's sequence number.

    \b
    Example:
        sagachain mailbox send --devnet devnet --as id0 --to id1 --text "lunch at 1?" --mirror --wait
        sagachain mailbox send --node 127.0.0.1:7101 --key-file alice.seed --account 5f1c...e2 \\
            --to 0b7e...9c --text "hi"
    """
    devnet = _devnet(devnet_dir)
    try:
        actor = actor_from(devnet, as_name, key_file, account)
        payload = payload_of(text)
        targets = [(_resolve(devnet, r, f"--to {r}"), f"--to {r}") for r in recipients]
        if len({t for t, _ in targets}) != len(targets):
            raise InputError(f"--to {', '.join(recipients)}: a recipient is named twice; each gets one envelope")
        paying = actor.account if payer is None else _resolve(devnet, payer, "--payer")
    except InputError as exc:
        _fail(str(exc), 2)
    console = Console()

    async def ask(client: Client) -> int:
        found = [(*await find_mailbox(client, account_id, what), what) for account_id, what in targets]
        if mirror:
            found.append((*await find_mailbox(client, actor.account, f"--mirror (--as {actor.name})"), "--mirror"))
        if len({mid for mid, _, _ in found}) != len(found):
            raise InputError("--mirror: the sender's mailbox is also a recipient's; drop --mirror or that --to")
        labels = {mid: f"{name_of(devnet, head.recipient)}'s mailbox" for mid, head, _ in found}
        sealed = [(mid, seal_dm(actor, mid, head, payload)) for mid, head, _ in found]
        script, accounts, gas = send_script(sealed)
        tx = sign(actor, devnet, (await client.account(actor.account)).nonce, nonce, payer=paying, accounts=accounts, script=script, gas_limit=gas)
        done = await _submit(client, tx, devnet, wait, timeout)
        if as_json:
            _json(done.to_json())
        else:
            _print_submitted(console, done, labels, timeout)
        return done.status

    _connect(devnet, address, node_key, ask)


# -- sync and ack -------------------------------------------------------------------------


def _reader(devnet: Devnet | None, as_name: str | None, key_file: Path | None, account: str | None, mailbox_arg: str | None,
            payer: str | None) -> tuple[Actor, bytes, bytes | None]:
    """The device that reads, the account whose mailbox it reads (an identity, or the mailbox
    itself), and who pays for its acknowledgements (None: the mailbox's manager)."""
    actor = actor_from(devnet, as_name, key_file, account)
    if mailbox_arg is None:
        owner = owner_of_device(as_name) if as_name is not None else None
        if owner is None or devnet is None or owner not in devnet.accounts:
            raise InputError("--mailbox IDENTITY is required: whose mailbox to read (with --devnet, a device NAME.devN reads NAME's by default)")
        mailbox_arg = owner
    paying = None if payer is None else _resolve(devnet, payer, "--payer")
    return actor, _resolve(devnet, mailbox_arg, f"--mailbox {mailbox_arg}"), paying


mailbox_option = click.option("--mailbox", "mailbox_arg", metavar="IDENTITY",
                              help="Whose mailbox: an identity (a name with --devnet, or its account id) or a mailbox id. Default with --devnet: NAME for a device NAME.devN.")


async def _acknowledge(client: Client, actor: Actor, devnet: Devnet | None, mid: bytes, head: MailboxHead, envelopes: dict[int, EnvelopeRecord],
                       device: Device, seqs: list[int], payer: bytes | None, nonce: int | None, wait: bool, timeout: float) -> Submitted:
    """One transaction, signed by the device's account, acknowledging ``seqs`` (MBX-2)."""
    ack_problem(mid, head, envelopes, device, seqs)
    if device.account != actor.account:
        raise InputError(f"--as {actor.name}: the device acknowledges through account {device.account.hex()[:16]}..., "
                         "whose key must sign the acknowledgement; act as that account", rule="MBX-2")
    script, gas = ack_script(device.id, {seq: envelopes[seq].size for seq in seqs})
    tx = sign(actor, devnet, (await client.account(actor.account)).nonce, nonce, payer=payer or head.manager, accounts={"m": mid}, script=script, gas_limit=gas)
    return await _submit(client, tx, devnet, wait, timeout)


def _letter_json(devnet: Devnet | None, letter: Letter, device: Device) -> dict[str, Any]:
    return {"seq": letter.seq, "time": letter.time, "sender": letter.sender, "sender_name": name_of(devnet, letter.sender) if devnet else None,
            "signer": letter.signer, "signer_is_sender": signer_known(devnet, letter), "size": letter.size, "targets": letter.targets,
            "acked": len(letter.acked), "acked_by_me": device.id in letter.acked, "purged": letter.purged or None,
            "text": letter.text, "note": letter.note or None}


def _letters_table(devnet: Devnet | None, letters: list[Letter], device: Device, title: str) -> Table:
    table = Table(title=title)
    for column in ("seq", "time (UTC)", "from", "bytes", "acked", "text"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        sender = name_of(devnet, letter.sender)
        if signer_known(devnet, letter) is False:
            sender += " (signed by another key!)"
        mine = " (me)" if device.id in letter.acked else ""
        body = Text(letter.text) if letter.text is not None else Text(letter.note, style="italic")
        table.add_row(str(letter.seq), _time(letter.time), Text(sender), str(letter.size), f"{len(letter.acked)}/{letter.targets}{mine}", body)
    return table


@mailbox.command("sync")
@devnet_option
@as_option
@key_file_option
@account_option
@mailbox_option
@click.option("--since", type=click.IntRange(min=1), help="List every envelope from this sequence number on (default: those this device has not acknowledged).")
@click.option("--ack", is_flag=True, help="Acknowledge what was listed, in one transaction the device signs (burn-on-read purges on the last device's).")
@click.option("--follow", is_flag=True, help="Then wait on the node's `mail` events and list new envelopes as they arrive, until Ctrl-C.")
@click.option("--count", type=click.IntRange(min=1), help="With --follow: stop once this many envelopes were listed in all.")
@payer_option
@wait_option
@timeout_option
@node_option
@pin_option
@json_option
def sync(devnet_dir: Path | None, as_name: str | None, key_file: Path | None, account: str | None, mailbox_arg: str | None, since: int | None,
         ack: bool, follow: bool, count: int | None, payer: str | None, wait: bool, timeout: float, address: str | None, node_key: str | None,
         as_json: bool) -> None:
    """Read a mailbox as one of its devices: list and open the envelopes it is a target of.

    Lists sequence number, time, sender, size, acknowledgements and the text
    (opened here with the device's key). Forward-only: envelopes that arrived
    before the device was registered do not name it and are not listed. By
    default only those the device has not acknowledged; --since SEQ lists all
    from SEQ on, purged ones as tombstones. --ack acknowledges what was
    listed (paid by the mailbox's manager unless --payer). --follow keeps
    listing new arrivals, told by the node's `mail` events. With --json, one
    object per read (`mailbox`, `device`, `cursor`: the next sequence number,
    `letters`, and with --ack `ack`), a line each.

    \b
    Example:
        sagachain mailbox sync --devnet devnet --as id1.dev0 --ack --wait
        sagachain mailbox sync --devnet devnet --as id1.dev1 --since 1 --json
        sagachain mailbox sync --devnet devnet --as id1.dev1 --follow --count 1
    """
    devnet = _devnet(devnet_dir)
    try:
        if count is not None and not follow:
            raise InputError("--count counts the envelopes --follow lists; give --follow too, or drop --count")
        if wait and not ack:
            raise InputError("--wait waits for the acknowledgement; give --ack too, or drop --wait")
        actor, owner, paying = _reader(devnet, as_name, key_file, account, mailbox_arg, payer)
    except InputError as exc:
        _fail(str(exc), 2)
    console = Console()

    async def ask(client: Client) -> int:
        mid, _ = await find_mailbox(client, owner, f"--mailbox {mailbox_arg or name_of(devnet, owner)}")
        events = client.subscribe([TOPIC])  # sends nothing until started
        if follow:
            await events.start()  # before the first read: an arrival in between is still announced
        listed, status, cursor = 0, 0, since

        async def batch(start: int | None, first: bool) -> int:
            """List (and acknowledge) what is there from ``start``; a later read of --follow shows only news."""
            nonlocal listed, status
            head, envelopes = await read_envelopes(client, mid)
            device = device_of(head, mid, actor)
            letters = read_mail(mid, envelopes, device, actor.key.seed, start or unread(envelopes, device), unacked_only=start is None)
            if count is not None:
                letters = letters[: count - listed]
            listed += len(letters)
            result: dict[str, Any] = {"mailbox": mid, "device": device.id, "cursor": head.next_seq,
                                      "letters": [_letter_json(devnet, letter, device) for letter in letters]}
            if not as_json and (letters or first):
                console.print(_letters_table(devnet, letters, device, f"{name_of(devnet, head.recipient)}'s mailbox as {actor.name}: "
                                             f"{len(letters)} envelope(s)"))
            todo = [letter.seq for letter in letters if not letter.purged and device.id not in letter.acked]
            if ack and todo:
                done = await _acknowledge(client, actor, devnet, mid, head, envelopes, device, todo, paying, None, wait, timeout)
                result["ack"] = done.to_json()
                status = max(status, done.status)
                if not as_json:
                    _print_submitted(console, done, {mid: f"{name_of(devnet, head.recipient)}'s mailbox"}, timeout)
            if as_json and (letters or first):
                _json(result)
            return head.next_seq

        cursor = await batch(cursor, True)
        if not follow or (count is not None and listed >= count):
            return status
        if not as_json:
            console.print(f"following {name_of(devnet, owner)}'s mailbox on {client.address} (Ctrl-C to stop)", markup=False, highlight=False)
        async for event in events:
            data = event.data if isinstance(event.data, dict) else {}
            if data.get("mailbox") != mid or data.get("change") != ARRIVED or int(data.get("seq") or 0) < cursor:
                continue
            cursor = await batch(cursor, False)
            if count is not None and listed >= count:
                break
        return status

    _connect(devnet, address, node_key, ask)


@mailbox.command("ack")
@click.argument("seqs", nargs=-1, type=click.IntRange(min=1), metavar="SEQ...")
@devnet_option
@as_option
@key_file_option
@account_option
@mailbox_option
@payer_option
@nonce_option
@wait_option
@timeout_option
@node_option
@pin_option
@json_option
def ack(seqs: tuple[int, ...], devnet_dir: Path | None, as_name: str | None, key_file: Path | None, account: str | None, mailbox_arg: str | None,
        payer: str | None, nonce: int | None, wait: bool, timeout: float, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Acknowledge envelopes SEQ... of a mailbox as one of its devices (MBX-2).

    One transaction, signed by the device's account and paid by the
    mailbox's manager unless --payer. Under burn-on-read the acknowledgement
    of an envelope's last target device purges it: the chain keeps a
    tombstone (sender, size, who acknowledged, when and why it was purged);
    no separate purge is needed. Refused before signing when an envelope does
    not exist, is purged, does not name this device, or was acknowledged.

    \b
    Example:
        sagachain mailbox ack 1 2 --devnet devnet --as id1.dev1 --wait
    """
    devnet = _devnet(devnet_dir)
    try:
        if not seqs:
            raise InputError("give at least one SEQ, the number of an envelope to acknowledge (as `sagachain mailbox sync` lists them)")
        actor, owner, paying = _reader(devnet, as_name, key_file, account, mailbox_arg, payer)
    except InputError as exc:
        _fail(str(exc), 2)
    console = Console()

    async def ask_node(client: Client) -> int:
        mid, _ = await find_mailbox(client, owner, f"--mailbox {mailbox_arg or name_of(devnet, owner)}")
        head, envelopes = await read_envelopes(client, mid)
        device = device_of(head, mid, actor)
        done = await _acknowledge(client, actor, devnet, mid, head, envelopes, device, list(seqs), paying, nonce, wait, timeout)
        if as_json:
            _json(done.to_json())
        else:
            _print_submitted(console, done, {mid: f"{name_of(devnet, head.recipient)}'s mailbox"}, timeout)
        return done.status

    _connect(devnet, address, node_key, ask_node)


# -- the registry -------------------------------------------------------------------------


@click.group("registry")
def registry() -> None:
    """Discovery through the public registry (REG-1): identity -> enclaves and mailbox, enclave -> roster, shards, nodes.

    \b
    Example:
        sagachain registry lookup id0 --devnet devnet
        sagachain registry lookup E --devnet devnet --json
    """


def _node_names(devnet: Devnet | None) -> dict[str, str]:
    """Node key (hex) -> "name (address)" from devnet.json, to put names on roster entries."""
    if devnet is None:
        return {}
    try:
        record = load_record(devnet.directory)
    except InputError:
        return {}
    return {str(n.get("node_key")): f"{n.get('name')} ({n.get('address')})" for n in record["nodes"]}


def _pairs(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for what, value in rows:
        table.add_row(what, Text(value))
    return table


def _lookup_tables(devnet: Devnet | None, found: dict[str, Any]) -> list[Table]:
    if "identity" in found:
        view = found["identity"]
        rows = [("identity", f"{view['identity'].hex()} ({name_of(devnet, view['identity'])})"),
                ("registered", "yes" if view["registered"] else "no (a mailbox without a registry record)"),
                ("enclaves", ", ".join(f"{e['role']}: {e['enclave']} ({e['kind'] or 'unregistered'})" for e in view["enclaves"]) or "none")]
        box = view["mailbox"]
        if box is None:
            rows.append(("mailbox", "none"))
        else:
            rows += [("mailbox", box["id"].hex()), ("retention", box["retention"] + (f" ({box['ttl_ms']} ms)" if box["retention"] == "ttl" else "")),
                     ("manager", name_of(devnet, box["manager"])), ("next seq", str(box["next_seq"])),
                     ("envelopes", f"{box['held']} held, {box['purged']} purged (tombstones)"),
                     ("devices", ", ".join(name_of(devnet, d["account"]) for d in box["devices"]) or "none")]
        return [_pairs("identity", rows)]
    view = found["enclave"]
    names = _node_names(devnet)
    head = _pairs(f"enclave {view['enclave']}", [
        ("kind", f"{view['kind']} (a hint, REG-1)"), ("roster", view["roster"].hex()), ("mailbox", view["mailbox"].hex()),
        ("registrant", name_of(devnet, view["registrant"])), ("shards", ", ".join(view["shards"]) or "none"),
        ("epoch", str(view["epoch"])), ("auto join", str(view["auto_join"])),
    ])
    nodes = Table(title=f"nodes on the roster of {view['enclave']}")
    for column in ("node", "name", "state", "traits", "seats", "key"):
        nodes.add_column(column, overflow="fold")
    for n in view["nodes"]:
        nodes.add_row(n["node"].hex()[:16], names.get(n["key"].hex(), "-"), n["state"], ", ".join(n["traits"]) or "-", ", ".join(n["seats"]) or "-", n["key"].hex())
    return [head, nodes]


@registry.command("lookup")
@click.argument("key", metavar="KEY")
@devnet_option
@node_option
@pin_option
@json_option
def lookup_command(key: str, devnet_dir: Path | None, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Walk the registry from KEY: an identity (a devnet name or its 64-hex account id) or an enclave id.

    An identity shows its enclaves (personal, DM, shared, each with its
    registered kind) and its mailbox (retention, manager, devices, envelopes
    held and purged). An enclave shows its kind (a hint only), its roster and
    mailbox accounts, its shards, and every node on its roster with state,
    traits and seats. With --json, one object: {"identity": ...} or {"enclave": ...}.

    \b
    Example:
        sagachain registry lookup id0 --devnet devnet
        sagachain registry lookup E --node 127.0.0.1:7101 --json
    """
    devnet = _devnet(devnet_dir)
    console = Console()

    async def ask(client: Client) -> int:
        found = await lookup(client, devnet, key)
        if as_json:
            _json(found)
        else:
            for table in _lookup_tables(devnet, found):
                console.print(table)
        return 0

    _connect(devnet, address, node_key, ask)
