"""Mail in the simulator (sagachain.sim.mail): real envelopes through real mailboxes, end to end.

Each test declares a small scenario, runs it, and reads the outcome where it
is authoritative: the final chain state (envelope records, tombstones), the
chain file (entries, public bytes) and the driver's record of what each
device read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sagachain.core.block import MixedEntry
from sagachain.core.chainfile import read_chain
from sagachain.core.envelope import open_direct
from sagachain.core.mailbox import envelope_id, envelope_of, mailbox_id
from sagachain.core.roster import BURN_ON_READ, PERMANENT, TTL
from sagachain.errors import InputError
from sagachain.sim.mail import MailDriver
from sagachain.sim.mail_report import mail_plaintext_in
from sagachain.sim.output import write_results
from sagachain.sim.runner import SimResult, Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from shards.tools import tools_for


def _run(build: Callable[[Scenario], None], out: Path, seed: int = 1) -> tuple[SimResult, MailDriver, dict]:
    sc = Scenario(seed, name="mailtest")
    sc.public_shards(2)
    sc.mail_clients(poll_ms=1_000, online=1.0)
    build(sc)
    world = build_world(sc)
    initial = {e: store.copy() for e, store in world.stores.items()}
    result = Simulation(world, tools_for(sc.crypto)).run()
    summary = write_results(result, out, initial, plots=False)
    assert result.mail is not None
    assert summary["checks"]["audit"]["verdict"] == "well-formed", summary["checks"]["audit"]
    return result, result.mail, summary


def _envelope(result: SimResult, owner: str, seq: int):  # type: ignore[no-untyped-def]
    mid = mailbox_id(result.world.account(owner))
    record = envelope_of(result.chain.objects.get(envelope_id(mid, seq)))
    assert record is not None
    return record


def _ids(result: SimResult, *names: str) -> set[bytes]:
    return {result.world.account(n) for n in names}


def _dm(s: Scenario) -> None:
    s.configure(duration=8_000)
    s.identity("ann", retention=BURN_ON_READ)
    s.identity("ben", retention=BURN_ON_READ)
    s.dm(500, "ann", "ben", "hello ben, lunch at noon?")


def test_burn_on_read_dm_is_read_by_both_devices_then_purged(tmp_path: Path) -> None:
    result, mail, summary = _run(_dm, tmp_path / "a")
    (letter,) = mail.letters
    devices = _ids(result, "ben.dev0", "ben.dev1")
    assert set(letter.targets) == devices and set(letter.opened) == devices
    record = _envelope(result, "ben", 1)
    assert set(record.acked) == devices
    assert (record.purged, record.sealed) == (BURN_ON_READ, b"")  # a tombstone: no ciphertext left
    assert record.size == letter.size and record.purged_at >= record.time
    assert summary["mail"]["purges"] == {BURN_ON_READ: 1}
    _, _, again = _run(_dm, tmp_path / "b")
    assert again["chain"]["blake3"] == summary["chain"]["blake3"]
    assert (tmp_path / "a" / "chain.sgc").read_bytes() == (tmp_path / "b" / "chain.sgc").read_bytes()


def test_ttl_envelopes_go_only_after_their_ttl_and_permanent_ones_stay(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        s.configure(duration=12_000)
        s.identity("ann")
        s.identity("cat", retention=TTL, ttl_ms=4_000)
        s.identity("eve", retention=PERMANENT)
        s.dm(500, "ann", "cat", "cat: the TTL one")
        s.dm(500, "ann", "eve", "eve: the permanent one")

    result, mail, summary = _run(build, tmp_path)
    kept, expired = _envelope(result, "eve", 1), _envelope(result, "cat", 1)
    assert expired.purged == TTL and expired.sealed == b"" and expired.purged_at >= expired.time + 4_000
    assert set(expired.acked) == _ids(result, "cat.dev0", "cat.dev1")  # read, yet kept until the TTL
    assert not kept.purged and kept.sealed and set(kept.acked) == _ids(result, "eve.dev0", "eve.dev1")
    assert summary["mail"]["purges"] == {TTL: 1}
    series = summary["mail"]["series"]
    assert series[PERMANENT][-1][1] == 1 and series[TTL][-1][1] == 0
    held = [t for t, live, _ in series[TTL] if live]
    assert held and max(held) - min(held) >= 3_000  # the TTL envelope was live for its TTL


def test_a_device_added_later_reads_only_what_is_sent_after(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        s.configure(duration=10_000)
        s.identity("ann")
        s.identity("eve", retention=PERMANENT, spare_devices=1)
        s.dm(500, "ann", "eve", "before the new device")
        assert s.device(3_000, "eve", "add") == "eve.dev2"
        s.dm(6_000, "ann", "eve", "after the new device")

    result, mail, _ = _run(build, tmp_path)
    new = result.world.account("eve.dev2")
    before, after = sorted(mail.letters, key=lambda x: x.message)
    assert new not in before.targets and new not in before.opened
    old = _envelope(result, "eve", 1)
    seed = result.world.account_keys[new].seed  # type: ignore[union-attr]
    assert open_direct(old.sealed, mailbox=before.mailbox, device=new, device_seed=seed) is None
    assert new in after.targets and new in after.opened
    client = mail.clients[new]
    assert client.probes >= 1 and client.breaches == 0


def test_a_group_dm_goes_into_every_participants_mailbox(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        s.configure(duration=8_000)
        for name in ("ann", "ben", "cat"):
            s.identity(name)
        s.group_dm(500, "ann", ["ben", "cat"], "hello all three of us")

    result, mail, summary = _run(build, tmp_path)
    groups = [x for x in mail.letters if x.role == "group"]
    handovers = [x for x in mail.letters if x.role == "handover"]
    boxes = {mailbox_id(result.world.account(n)) for n in ("ann", "ben", "cat")}
    assert {x.mailbox for x in groups} == boxes == {x.mailbox for x in handovers}  # no shared log (MBX-3)
    for letter in groups:
        assert letter.targets and set(letter.opened) == set(letter.targets)
    readers = set().union(*(x.opened for x in groups))
    assert readers == _ids(result, *(f"{n}.dev{i}" for n in ("ann", "ben", "cat") for i in (0, 1)))
    assert summary["mail"]["observer"]["conversations_linked"] == 1  # the conversation id is public


def test_message_texts_canaries_and_keys_are_in_no_public_byte(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        s.configure(duration=10_000)
        for name in ("ann", "ben", "cat", "dan"):
            s.identity(name)
        s.mail_traffic(200, 4_000, 12, group_share=0.3, mirror_share=0.5)

    result, mail, summary = _run(build, tmp_path)
    assert summary["checks"]["mail_plaintext_found"] == 0
    public = b"".join((tmp_path / f).read_bytes() for f in ("chain.sgc", "results.json", "mail_observer.csv"))
    assert mail.messages and mail.secrets
    for message in mail.messages:
        assert message.canary.encode() not in public and message.text.encode() not in public
    for key in mail.secrets:
        assert key not in public and key.hex().encode() not in public
    assert mail.counts["garbled"] == 0 and mail.counts["opened"] > 0  # the devices read the texts and canaries
    assert mail_plaintext_in(mail, public + mail.messages[0].payload)  # and the check would see a leak


def test_enclave_to_enclave_data_is_a_mixed_transaction_on_the_senders_shard(tmp_path: Path) -> None:
    def build(s: Scenario) -> None:
        s.configure(duration=8_000)
        s.identity("ann")  # mail needs no identity here; it shares the run with one
        s.enclave("alpha", shards=1, nodes=4)
        s.enclave("beta", shards=1, nodes=4)
        s.enclave_account("alpha", "alpha_agent")
        s.account("relay", balance=1_000_000)
        s.enclave_mail(500, "alpha", "beta", "alpha to beta, sealed", payer="relay")

    result, mail, summary = _run(build, tmp_path)
    (letter,) = mail.letters
    assert (letter.entry, letter.shard, letter.failed) == ("mixed", "alpha/0", "")
    beta = mailbox_id("beta")
    chain = read_chain(tmp_path / "chain.sgc")
    entries = [(b.shard, e) for b in chain.blocks for e in b.entries if isinstance(e, MixedEntry)]
    ((shard, entry),) = entries
    assert shard == "alpha/0" and result.world.account("alpha_agent") in entry.tx.account_ids()
    assert any(u.value is not None and u.value.owner == beta for u in entry.updates)
    nodes = {n.id for n in result.world.genesis.nodes if n.name.startswith("beta")}
    assert set(letter.opened) == nodes == set(letter.targets)
    assert summary["mail"]["observer"]["enclave_senders"] == ["alpha_agent on alpha/0 -> beta.mailbox"]
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["committed"]["mixed"] == 1


@pytest.mark.parametrize(
    "declare, argument",
    [
        (lambda s: s.dm(0, "ann", "nobody", "hi there"), "recipient"),
        (lambda s: s.dm(0, "ann", "ann", "hi there"), "sender and recipient"),
        (lambda s: s.group_dm(0, "ann", ["ben"], "hi there"), "participants"),
        (lambda s: s.device(0, "ann", "add"), "spare device"),
        (lambda s: s.device(0, "ann", "drop"), "op"),
        (lambda s: s.dm(-1, "ann", "ben", "hi there"), "at=-1"),
        (lambda s: s.mail_traffic(10, 5, 3), "start=10"),
        (lambda s: s.enclave_mail(0, "ann", "ben", "x", payer="ann"), "from_enclave"),
    ],
)
def test_mail_declarations_name_the_bad_argument(declare: Callable[[Scenario], None], argument: str) -> None:
    s = Scenario(1)
    s.identity("ann")
    s.identity("ben")
    with pytest.raises(InputError, match=argument):
        declare(s)
