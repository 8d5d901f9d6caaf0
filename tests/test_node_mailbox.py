"""Mailboxes and the registry for node users: ``sagachain mailbox``, ``registry lookup``, the ``mail`` topic.

Fast tests cover the pure parts with real keys and real chain data: the
``mail`` event extraction over a simulated chain's blocks (and forged log
lines it must not believe), sealing and reading envelopes forward-only, the
refusals before anything is signed, the registry views of a genesis, the
devnet's identities, and every command's arguments and help.

The slow test runs a devnet of real node processes with two identities: a DM
from id0 to id1 reaches both of id1's devices (one told by ``sync --follow``),
both acknowledge, the last acknowledgement purges it under burn-on-read (a
tombstone on chain), a ``mail`` subscriber is told each step, a device
registered afterwards reads only what is sent after it, and a canary planted
in the text appears in no public byte.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from click.testing import CliRunner

from devnet_kit import public_bytes
from node.client import open_client
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from node.mail_events import ACKED, ARRIVED, PURGED, mail_events
from sagachain.cli import main
from sagachain.core.block import MixedEntry, OpenEntry
from sagachain.core.envelope import seal_direct
from sagachain.core.keys import KeyPair
from sagachain.core.mailbox import REGISTRY_ID, Device, EnvelopeRecord, MailboxHead, envelope_id, envelope_of, mailbox_id
from sagachain.core.roster import BURN_ON_READ, MEMBER, roster_id
from sagachain.core.system import call_script
from sagachain.core.tx import make_transaction
from sagachain.errors import InputError, SagaError
from sagachain.mail_client import (
    Actor,
    ack_problem,
    enclave_view,
    envelopes_of,
    identity_view,
    owner_of_device,
    payload_of,
    read_mail,
    registry_records,
    unread,
)
from sagachain.sim.runner import Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from shards.tools import tools_for

ROOT = Path(__file__).resolve().parents[1]


# -- the mail topic: what a final block tells subscribers -----------------------------------


def _simulated_dm() -> tuple[Any, list[Any]]:
    """A simulated chain in which ann DMs ben (mirrored), both of ben's devices read and acknowledge."""
    sc = Scenario(1, name="mailevents")
    sc.public_shards(1)
    sc.mail_clients(poll_ms=1_000, online=1.0)
    sc.configure(duration=6_000)
    sc.identity("ann")
    sc.identity("ben")
    sc.dm(500, "ann", "ben", "hello ben", mirror=True)
    world = build_world(sc)
    result = Simulation(world, tools_for(sc.crypto)).run()
    return result, result.blocks


def test_a_dm_its_acknowledgements_and_its_purge_are_each_one_mail_event() -> None:
    result, blocks = _simulated_dm()
    world = result.world
    ben = mailbox_id(world.account("ben"))
    events = [e for block in blocks for e in mail_events(block)]
    for_ben = [(e["change"], e["seq"], e["acked"], e["targets"]) for e in events if e["mailbox"] == ben]
    assert for_ben == [(ARRIVED, 1, 0, 2), (ACKED, 1, 1, 2), (PURGED, 1, 2, 2)]
    arrived = next(e for e in events if e["mailbox"] == ben)
    record = envelope_of(result.chain.objects[envelope_id(ben, 1)])
    assert record is not None and arrived["sender"] == world.account("ann") and arrived["size"] == record.size
    assert any(e["mailbox"] == mailbox_id(world.account("ann")) and e["change"] == ARRIVED for e in events)  # the mirror
    block = next(b for b in blocks if any(e["tx"] == arrived["tx"] for e in mail_events(b)))
    assert (arrived["shard"], arrived["height"], arrived["time"]) == (block.shard, block.height, block.header.time)
    assert set(arrived) == {"mailbox", "seq", "change", "sender", "size", "acked", "targets", "shard", "height", "time", "tx"}  # no ciphertext


def test_a_log_line_without_the_envelope_in_the_entrys_updates_is_not_believed() -> None:
    """Any script may ``log``; only the entry's own state updates make a mail event."""
    _, blocks = _simulated_dm()
    block = next(b for b in blocks if mail_events(b))
    index, entry = next((i, e) for i, e in enumerate(block.entries) if isinstance(e, OpenEntry) and e.log)
    forged_line = ["envelope", b"\x07" * 32, 9, entry.tx.sender, 100]
    lying = replace(entry, log=(*entry.log, forged_line), updates=())
    assert mail_events(replace(block, entries=(lying,))) == []
    wrong_size = [[*item[:4], item[4] + 1] if item[0] == "envelope" else item for item in entry.log]
    assert all(e["change"] != ARRIVED for e in mail_events(replace(block, entries=(replace(entry, log=tuple(wrong_size)),))))
    assert mail_events(replace(block, entries=(replace(entry, ok=False),))) == []  # a failed script changed nothing
    odd_lines = ([["x"], 1, 2], ["envelope"], [b"envelope", 1, 2], "envelope", ["acked", "not bytes", 1], ["acked", b"\x07" * 32, True], 7)
    assert mail_events(replace(block, entries=(replace(entry, log=odd_lines),))) == []  # whatever a script logs, no crash


def test_a_mixed_entry_is_read_from_its_public_updates() -> None:
    """A mixed entry's log is a hash (TX-4); its envelope updates say what happened."""
    _, blocks = _simulated_dm()
    block = next(b for b in blocks if any(e["change"] == ARRIVED for e in mail_events(b)))
    entry = next(e for e in block.entries if isinstance(e, OpenEntry) and e.log)
    mixed = MixedEntry(tx=entry.tx, gas_charged=entry.gas_used, fee=entry.fee, tax=entry.tax, state_hash=bytes(32), log_hash=bytes(32), updates=entry.updates)
    assert [(e["change"], e["seq"]) for e in mail_events(replace(block, entries=(mixed,)))] == [(ARRIVED, 1), (ARRIVED, 1)]


# -- sealing and reading, forward-only --------------------------------------------------------


def _keys(*names: str) -> dict[str, KeyPair]:
    return {name: KeyPair(bytes([i + 1]) * 32) for i, name in enumerate(names)}


def _mailbox_with_two_envelopes() -> tuple[bytes, dict[int, EnvelopeRecord], dict[str, Device], dict[str, KeyPair]]:
    """Envelope 1 sealed to dev0 and dev1; envelope 2 after dev2 was registered, sealed to all three."""
    keys = _keys("sender", "dev0", "dev1", "dev2")
    devices = {n: Device(id=bytes([i]) * 32, key=keys[n].public, account=bytes([i]) * 32) for i, n in enumerate(("dev0", "dev1", "dev2"), 10)}
    mid = mailbox_id(b"\x01" * 32)
    envelopes = {}
    for seq, names in ((1, ("dev0", "dev1")), (2, ("dev0", "dev1", "dev2"))):
        sealed = seal_direct(sender=keys["sender"], mailbox=mid, devices=[(devices[n].id, devices[n].key) for n in names],
                             payload=f"message {seq}".encode(), entropy=os.urandom)
        envelopes[seq] = EnvelopeRecord(seq=seq, sender=b"\x05" * 32, sealed=sealed, size=len(sealed), time=1000 * seq,
                                        targets=tuple(sorted(devices[n].id for n in names)), acked=())
    return mid, envelopes, devices, keys


def test_a_device_reads_what_names_it_and_a_later_device_nothing_before_it() -> None:
    mid, envelopes, devices, keys = _mailbox_with_two_envelopes()
    sender = keys["sender"].public
    first = read_mail(mid, envelopes, devices["dev0"], keys["dev0"].seed, 1, unacked_only=True)
    assert [(x.seq, x.text, x.signer) for x in first] == [(1, "message 1", sender), (2, "message 2", sender)]
    late = read_mail(mid, envelopes, devices["dev2"], keys["dev2"].seed, 1, unacked_only=False)
    assert [(x.seq, x.text) for x in late] == [(2, "message 2")]  # forward-only: envelope 1 does not name it
    wrong_seed = read_mail(mid, envelopes, devices["dev1"], keys["dev0"].seed, 1, unacked_only=False)
    assert [(x.text, x.note) for x in wrong_seed] == [(None, "does not open with this device's key")] * 2


def test_the_default_cursor_is_the_first_envelope_the_device_has_not_acknowledged() -> None:
    mid, envelopes, devices, keys = _mailbox_with_two_envelopes()
    dev0, seed = devices["dev0"], keys["dev0"].seed
    assert unread(envelopes, dev0) == 1
    envelopes[1] = replace(envelopes[1], acked=(dev0.id,))
    assert unread(envelopes, dev0) == 2
    assert [x.seq for x in read_mail(mid, envelopes, dev0, seed, unread(envelopes, dev0), unacked_only=True)] == [2]
    envelopes[2] = replace(envelopes[2], sealed=b"", purged=BURN_ON_READ, acked=tuple(sorted(d.id for d in devices.values())))
    assert unread(envelopes, dev0) == 3
    (tombstone,) = read_mail(mid, envelopes, dev0, seed, 2, unacked_only=False)
    assert (tombstone.text, tombstone.note) == (None, "purged (burn-on-read)")


@pytest.mark.parametrize("seqs, message", [
    ([], "at least one SEQ"),
    ([1, 1], "given twice"),
    ([7], "has no envelope number 7"),
    ([3], "already purged"),
    ([1], "not a target of envelope 1"),
    ([2], "already acknowledged"),
])
def test_acknowledgements_the_mailbox_would_refuse_are_refused_before_signing(seqs: list[int], message: str) -> None:
    mid, envelopes, devices, _ = _mailbox_with_two_envelopes()
    dev2 = devices["dev2"]
    envelopes[2] = replace(envelopes[2], acked=(dev2.id,))
    envelopes[3] = replace(envelopes[2], seq=3, sealed=b"", purged=BURN_ON_READ)
    head = MailboxHead(recipient=b"\x01" * 32, manager=b"\x01" * 32, retention=BURN_ON_READ, ttl=0, next_seq=4, devices=tuple(devices.values()))
    with pytest.raises(InputError, match=message) as caught:
        ack_problem(mid, head, envelopes, dev2, seqs)
    assert caught.value.rule in (None, "MBX-2", "MBX-4")


def test_a_dm_text_must_be_there_and_fit_one_transaction() -> None:
    assert payload_of("héllo") == "héllo".encode()
    with pytest.raises(InputError, match="--text is empty"):
        payload_of("")
    with pytest.raises(InputError, match="at most"):
        payload_of("x" * 70_000)


def test_a_devnet_device_reads_its_identitys_mailbox_by_default() -> None:
    assert owner_of_device("id1.dev0") == "id1"
    assert owner_of_device("id1.dev12") == "id1"
    assert owner_of_device("user0") is None and owner_of_device("id1.devx") is None and owner_of_device(".dev0") is None


# -- the registry --------------------------------------------------------------------------


def test_the_registry_walks_from_an_identity_and_from_an_enclave() -> None:
    sc = Scenario(2, name="registry")
    sc.public_shards(1, nodes=2)
    sc.enclave("E", shards=2, nodes=2)
    sc.identity("ann")
    world = build_world(sc)
    objects = {o.id: o.value for o in world.genesis.objects}
    identities, enclaves = registry_records({oid: v for oid, v in objects.items() if v.owner == REGISTRY_ID})
    ann = world.account("ann")
    assert set(identities) == {ann} and set(enclaves) == {"E"}
    mid = mailbox_id(ann)
    from sagachain.core.mailbox import head_of_mailbox
    from sagachain.core.roster import entry_of, head_of

    view = identity_view(ann, identities[ann], mid, head_of_mailbox(objects[mid]), envelopes_of(mid, objects), {"E": enclaves["E"].kind})
    assert view["registered"] and view["enclaves"] == [] and view["mailbox"]["retention"] == BURN_ON_READ
    assert {d["account"] for d in view["mailbox"]["devices"]} == {world.account("ann.dev0"), world.account("ann.dev1")}
    roster = {oid: v for oid, v in objects.items() if v.owner == roster_id("E")}
    entries = [e for e in (entry_of(v) for v in roster.values()) if e is not None]
    shown = enclave_view(enclaves["E"], head_of(roster[roster_id("E")]), entries)
    assert shown["shards"] == ["E/0", "E/1"] and shown["roster"] == roster_id("E") and shown["mailbox"] == mailbox_id("E")
    committee = {n for s in world.genesis.shards if s.enclave == "E" for n in s.committee}
    assert {n["node"] for n in shown["nodes"]} == committee and {n["state"] for n in shown["nodes"]} == {MEMBER}
    assert sorted(s for n in shown["nodes"] for s in n["seats"]) == ["E/0", "E/0", "E/1", "E/1"]


# -- the devnet's identities ----------------------------------------------------------------


def test_a_devnet_with_identities_has_their_devices_mailboxes_and_registry_records() -> None:
    plan = plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=1, accounts=2, enclave_accounts=0, identities=2), base_port=24000)
    names = {a.name for a in plan.accounts}
    assert {"id0", "id0.dev0", "id0.dev1", "id1", "id1.dev0", "id1.dev1"} <= names
    from sagachain.core.mailbox import head_of_mailbox

    objects = {o.id: o.value for o in plan.world.genesis.objects}
    for i in range(2):
        head = head_of_mailbox(objects[mailbox_id(plan.world.account(f"id{i}"))])
        assert head is not None and head.retention == BURN_ON_READ
        assert {d.account for d in head.devices} == {plan.world.account(f"id{i}.dev{n}") for n in range(2)}
    without = plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=1, accounts=2, enclave_accounts=0), base_port=24000)
    assert not any(a.name.startswith("id") for a in without.accounts)
    with pytest.raises(InputError, match="--identities -1"):
        DevnetSpec(identities=-1).check()


# -- the commands' arguments and help -------------------------------------------------------


@pytest.mark.parametrize("command", [("mailbox", "send"), ("mailbox", "sync"), ("mailbox", "ack"), ("registry", "lookup"), ("mailbox",), ("registry",)])
def test_every_mailbox_and_registry_command_has_help_with_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output, result.output


def test_the_mail_topic_is_offered_by_the_node_the_client_and_tx_watch() -> None:
    from node import client, subscriptions

    assert "mail" in subscriptions.TOPICS and "mail" in client.TOPICS
    result = CliRunner().invoke(main, ["tx", "watch", "--help"])
    assert result.exit_code == 0 and "mail" in result.output


def test_docs_client_md_names_every_mailbox_and_registry_command_and_option() -> None:
    from sagachain.cli_mailbox import mailbox, registry

    text = (ROOT / "docs" / "CLIENT.md").read_text()
    for group in (mailbox, registry):
        for name, command in group.commands.items():
            assert f"{group.name} {name}" in text, name
            for param in command.params:
                for flag in param.opts:
                    if flag.startswith("--") and flag != "--help":
                        assert flag in text, f"{group.name} {name} {flag} is not in docs/CLIENT.md"
    assert "`mail`" in text


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mail") / "dn"
    write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=1, accounts=2, enclave_accounts=0, identities=2), base_port=24100), root)
    return root


@pytest.mark.parametrize("args, message", [
    (["mailbox", "send", "--as", "id0", "--to", "id1", "--text", "x"], "names need --devnet"),
    (["mailbox", "send", "--devnet", "{dn}", "--to", "id1", "--text", "x"], "exactly one of --as NAME"),
    (["mailbox", "send", "--devnet", "{dn}", "--as", "id0", "--key-file", "k", "--to", "id1", "--text", "x"], "exactly one of --as NAME"),
    (["mailbox", "send", "--devnet", "{dn}", "--as", "nobody", "--to", "id1", "--text", "x"], "'nobody' is not an account"),
    (["mailbox", "send", "--devnet", "{dn}", "--as", "id0", "--to", "id1", "--text", ""], "--text is empty"),
    (["mailbox", "send", "--devnet", "{dn}", "--as", "id0", "--to", "id1", "--to", "id1", "--text", "x"], "named twice"),
    (["mailbox", "send", "--devnet", "{dn}", "--as", "id0", "--to", "nobody", "--text", "x"], "64 hex digits"),
    (["mailbox", "sync", "--devnet", "{dn}", "--as", "id1.dev0", "--count", "2"], "give --follow too"),
    (["mailbox", "sync", "--devnet", "{dn}", "--as", "id1.dev0", "--wait"], "give --ack too"),
    (["mailbox", "sync", "--devnet", "{dn}", "--as", "user0"], "--mailbox IDENTITY is required"),
    (["mailbox", "sync", "--key-file", "k"], "give --account ID too"),
    (["mailbox", "ack", "--devnet", "{dn}", "--as", "id1.dev0"], "at least one SEQ"),
    (["mailbox", "ack", "0", "--devnet", "{dn}", "--as", "id1.dev0"], "SEQ"),
])
def test_wrong_arguments_are_refused_naming_them_before_anything_is_sent(written: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [a.replace("{dn}", str(written)) for a in args], env={"SAGACHAIN_NODE": "127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_an_actor_comes_from_a_devnet_name_or_a_key_file(written: Path, tmp_path: Path) -> None:
    from sagachain.mail_client import actor_from
    from sagachain.tx_build import Devnet

    devnet = Devnet.load(written)
    chosen = devnet.accounts["id1.dev0"]
    assert actor_from(devnet, "id1.dev0", None, None) == Actor(chosen.id, KeyPair(chosen.seed), "id1.dev0")
    seed_file = tmp_path / "dev.seed"
    seed_file.write_text(chosen.seed.hex() + "\n")
    assert actor_from(None, None, seed_file, chosen.id.hex()).key.public == KeyPair(chosen.seed).public
    with pytest.raises(InputError, match="is not the account of --as"):
        actor_from(devnet, "id1.dev0", None, "id1.dev1")


# -- real nodes -----------------------------------------------------------------------------


SPEC = DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=2, accounts=3, enclave_accounts=0, identities=2, seed=31)
CANARY = "canary-7f3a9c0d51e2b84466de"  # unique: appears only in the DM's plaintext


def _cli(*args: str) -> dict[str, Any]:
    """Run a sagachain command in this process; its one JSON line."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}"
    return json.loads(result.output.strip().splitlines()[-1])


def _line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line a subprocess prints, or a failure naming what it printed on stderr."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError(f"no output within {timeout} s; stderr: {proc.communicate()[1][-2000:]}")
    return proc.stdout.readline()


class MailWatcher(threading.Thread):
    """A client on the node's ``mail`` topic, in its own thread, until it sees ``until`` or time runs out."""

    def __init__(self, address: str, until: tuple[bytes, int, str], timeout: float) -> None:
        super().__init__(daemon=True)
        self.address, self.until, self.timeout = address, until, timeout
        self.events: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self.error: SagaError | None = None

    def run(self) -> None:
        async def watch() -> None:
            async with open_client(self.address) as client, client.subscribe(["mail"]) as stream:
                await client.ping()  # the node handles a connection's messages in order: the Subscribe is in
                self.subscribed.set()
                with trio.move_on_after(self.timeout):
                    async for event in stream:
                        self.events.append(event.data)
                        if (event.data["mailbox"], event.data["seq"], event.data["change"]) == self.until:
                            return

        try:
            trio.run(watch)
        except SagaError as exc:  # the devnet stopped early: the test's own failure says why
            self.error = exc


@pytest.mark.slow
def test_a_dm_reaches_both_devices_is_purged_on_the_last_ack_and_leaves_no_plaintext(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(SPEC), root)
    record = load_record(root)
    accounts = {a["name"]: a for a in record["accounts"]}
    ids = {name: bytes.fromhex(a["id"]) for name, a in accounts.items()}
    inbox = mailbox_id(ids["id1"])
    inbox_hex, outbox_hex = inbox.hex(), mailbox_id(ids["id0"]).hex()
    dn = ["--devnet", str(root)]
    follower: subprocess.Popen[str] | None = None
    metrics: list[bytes] = []
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        watcher = MailWatcher(record["nodes"][1]["address"], (inbox, 1, PURGED), timeout=45)
        watcher.start()
        assert watcher.subscribed.wait(15)
        follower = subprocess.Popen([sys.executable, "-m", "sagachain", "mailbox", "sync", *dn, "--as", "id1.dev1", "--follow", "--count", "1", "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        assert json.loads(_line(follower, 20))["letters"] == []  # its first read: the mailbox is empty, and it follows

        sent = _cli("mailbox", "send", *dn, "--as", "id0", "--to", "id1", "--mirror", "--text", f"meet at the pier {CANARY}", "--wait", "--json")
        assert sent["final"]["ok"] and {(e["mailbox"], e["seq"], e["change"]) for e in sent["envelopes"]} == {
            (inbox_hex, 1, ARRIVED), (outbox_hex, 1, ARRIVED)}

        told = json.loads(_line(follower, 20))  # told by a mail event, dev1 reads it
        assert follower.wait(10) == 0
        (letter,) = told["letters"]
        assert (letter["seq"], letter["sender_name"], letter["signer_is_sender"]) == (1, "id0", True) and CANARY in letter["text"]

        read = _cli("mailbox", "sync", *dn, "--as", "id1.dev0", "--ack", "--wait", "--json")
        assert [x["seq"] for x in read["letters"]] == [1] and CANARY in read["letters"][0]["text"]
        assert [(e["change"], e["acked"], e["targets"]) for e in read["ack"]["envelopes"]] == [(ACKED, 1, 2)]
        last = _cli("mailbox", "ack", "1", *dn, "--as", "id1.dev1", "--wait", "--json")
        assert [(e["change"], e["acked"]) for e in last["envelopes"]] == [(PURGED, 2)]

        mirror = _cli("mailbox", "sync", *dn, "--as", "id0.dev0", "--json")
        assert [CANARY in x["text"] for x in mirror["letters"]] == [True]

        # A device registered now reads nothing sent before it (forward-only), then the next DM.
        late = KeyPair(bytes.fromhex(accounts["user2"]["seed"]))
        script = call_script("m", "add_device", [ids["user2"], late.public, ids["user2"]])
        add = make_transaction(key=KeyPair(bytes.fromhex(accounts["id1"]["seed"])), sender=ids["id1"], nonce=1, gas_limit=50_000,
                               gas_payer=ids["id1"], accounts={"m": inbox}, script=script)

        async def register() -> Any:
            async with open_client(record["nodes"][0]["address"]) as client:
                assert (await client.submit(add)).accepted
                with trio.fail_after(20):
                    while (receipt := await client.receipt(add.id)).status != "final":
                        await trio.sleep(0.1)
                assert receipt.ok
                return envelope_of((await client.object(envelope_id(inbox, 1))).value)

        tombstone = trio.run(register)
        assert tombstone is not None and (tombstone.purged, tombstone.sealed) == (BURN_ON_READ, b"")
        assert set(tombstone.acked) == {ids["id1.dev0"], ids["id1.dev1"]} and tombstone.size == letter["size"]
        assert _cli("mailbox", "sync", *dn, "--as", "user2", "--mailbox", "id1", "--since", "1", "--json")["letters"] == []
        _cli("mailbox", "send", *dn, "--as", "id0", "--to", "id1", "--text", "after you joined", "--wait", "--json")
        news = _cli("mailbox", "sync", *dn, "--as", "user2", "--mailbox", "id1", "--since", "1", "--json")
        assert [(x["seq"], x["text"]) for x in news["letters"]] == [(2, "after you joined")]

        found = _cli("registry", "lookup", "id1", *dn, "--json")["identity"]
        assert found["registered"] and found["mailbox"]["id"] == inbox_hex
        assert (found["mailbox"]["held"], found["mailbox"]["purged"], len(found["mailbox"]["devices"])) == (1, 1, 3)

        watcher.join(30)
        assert watcher.error is None, watcher.error
        seen = [(e["mailbox"], e["seq"], e["change"]) for e in watcher.events]
        assert [s for s in seen if s[0] == inbox] == [(inbox, 1, ARRIVED), (inbox, 1, ACKED), (inbox, 1, PURGED)]
        arrival = next(e for e in watcher.events if e["mailbox"] == inbox)
        assert (arrival["sender"], arrival["size"], arrival["targets"]) == (ids["id0"], letter["size"], 2)
        for node in record["nodes"]:
            if node.get("metrics"):
                metrics.append(urllib.request.urlopen(f"http://{node['metrics']}/metrics", timeout=5).read())
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait()
        stop_devnet(root)

    assert metrics, "the devnet serves metrics"
    seen = {f"event {i}": msgpack.packb(e, use_bin_type=True) for i, e in enumerate(watcher.events)}
    public = public_bytes(root, record, tmp_path, {**seen, **{f"metrics {i}": data for i, data in enumerate(metrics)}})
    assert len(public) >= 3 * len(record["nodes"]) + len(metrics)
    leaks = [name for name, data in public.items() if CANARY.encode() in data]
    assert not leaks, f"the DM's plaintext is in {leaks}"
    # the control: the scan reads what it should, the public facts of the DM are there
    stores = [name for name in public if name.endswith((".sgc", "node.sqlite"))]
    assert len(stores) == 2 * len(record["nodes"]) and all(inbox in public[name] for name in stores)
    assert any(inbox in data for name, data in public.items() if name.startswith("event"))
