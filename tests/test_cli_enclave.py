"""``sagachain enclave``: option checking, help, key files, the roster read offline, and one real devnet.

The fast tests run the commands in-process (click's runner) wherever no node
is needed: a bad argument must exit 2 before any connection (the address
given is one nothing listens on, so a connection attempt would exit 1
instead). The offline ``roster --chain`` reads a simulated chain file. The
slow test runs every command as its own process against a two-node devnet:
a fresh node key applies, the admin approves it, removing the owner is
refused (MEM-2), the node rotates its key and is removed, and the roster at
an earlier height is read back from the exported chain file.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from sagachain.cli import main
from sagachain.cli_enclave import enclave
from sagachain.core.chainfile import write_chain
from sagachain.core.keys import KeyPair
from sagachain.core.objects import node_id_for
from sagachain.core.roster import MEMBER, OWNER, PENDING, roster_id
from sagachain.core.roster_calls import KeyPackage, read_roster
from sagachain.enclave_calls import default_by, resolve_node
from sagachain.enclave_view import roster_table
from sagachain.errors import InputError
from sagachain.key_rotation import NEXT_KEY_FILE, finish_rotation, write_secret
from sagachain.sim.runner import Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from shards.tools import tools_for


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["enclave", *args], env={"SAGACHAIN_NODE": ""})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_seed(directory: Path, seed: bytes, name: str = "node.key", mode: int = 0o600) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(seed.hex() + "\n")
    path.chmod(mode)
    return path


SEED = KeyPair.derive("cli-enclave-signer").seed.hex()
SENDER = "ab" * 32


# -- help and option checking ----------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(enclave.commands))
def test_every_enclave_command_has_help_with_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output


def test_the_group_says_enclaves_come_from_the_genesis() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "no `create`" in result.output and "SH-3" in result.output and "--enclave-shards N" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["approve", "ab12"], "exactly one of --key-seed"),
        (["approve", "ab12", "--from", "alice"], "names need --devnet"),
        (["approve", "ab12", "--key-seed", SEED], "--sender ACCOUNT_ID_HEX is required"),
        (["approve", "ab12", "--key-seed", SEED, "--sender", SENDER], "which enclave? give --enclave NAME"),
        (["approve", "ab12", "--key-seed", "xyz", "--sender", SENDER, "--enclave", "E"], "an Ed25519 seed is 64 hex digits"),
        (["invite", "--package", "zz", "--key-seed", SEED, "--sender", SENDER, "--enclave", "E"], "copy it whole"),
        (["roster", "E", "--height", "3"], "--height needs --chain FILE"),
    ],
)
def test_argument_errors_exit_2_before_connecting(args: list[str], message: str) -> None:
    result = invoke(*args, "--node", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_node_key_files_are_checked_before_connecting(tmp_path: Path) -> None:
    base = ["--key-seed", SEED, "--sender", SENDER, "--enclave", "E", "--node", f"127.0.0.1:{free_port()}"]
    result = invoke("apply", "--node-dir", str(tmp_path / "none"), *base)
    assert result.exit_code == 2 and "cannot read the node key" in result.output
    write_seed(tmp_path / "open", b"\x01" * 32, mode=0o644)
    result = invoke("rotate-key", "--node-dir", str(tmp_path / "open"), *base)
    assert result.exit_code == 2 and "chmod 600" in result.output
    write_seed(tmp_path / "half", b"\x01" * 32)
    (tmp_path / "half" / NEXT_KEY_FILE).write_text("not a seed\n")
    result = invoke("rotate-key", "--node-dir", str(tmp_path / "half"), *base)
    assert result.exit_code == 2 and NEXT_KEY_FILE in result.output


def test_without_an_address_nothing_is_sent_and_an_unreachable_node_exits_1() -> None:
    base = ["grant", "ab12", "--key-seed", SEED, "--sender", SENDER, "--enclave", "E"]
    result = invoke(*base)
    assert result.exit_code == 2 and "give --node HOST:PORT or set SAGACHAIN_NODE" in result.output
    address = f"127.0.0.1:{free_port()}"
    result = invoke(*base, "--node", address)
    assert result.exit_code == 1 and address in result.output


def test_a_key_package_binds_the_node_key_to_the_account(tmp_path: Path) -> None:
    seed = KeyPair.derive("invitee").seed
    write_seed(tmp_path / "node", seed)
    account = "cd" * 32
    result = CliRunner().invoke(main, ["enclave", "key-package", "--node-dir", str(tmp_path / "node"), "--account", account, "--enclave", "E", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    package = KeyPackage.from_hex(report["package"])
    assert (package.enclave, package.key, package.account) == ("E", KeyPair(seed).public, bytes.fromhex(account))
    assert report["node"] == node_id_for(package.key).hex()
    result = invoke("key-package", "--node-dir", str(tmp_path / "node"), "--account", "bob", "--enclave", "E")
    assert result.exit_code == 2 and "--account 'bob' must be 64 hex digits" in result.output


# -- key files ------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_finished_rotation_keeps_the_old_seed_once_and_every_file_private(tmp_path: Path) -> None:
    old, new = KeyPair.derive("old"), KeyPair.derive("new")
    write_seed(tmp_path, old.seed)
    write_secret(tmp_path / NEXT_KEY_FILE, new.seed.hex() + "\n")
    assert _mode(tmp_path / NEXT_KEY_FILE) == 0o600
    finish_rotation(tmp_path, old, new)
    assert (tmp_path / "node.key").read_text().strip() == new.seed.hex()
    assert (tmp_path / "node.key.previous").read_text().split() == [old.seed.hex()]
    assert not (tmp_path / NEXT_KEY_FILE).exists()
    assert _mode(tmp_path / "node.key") == _mode(tmp_path / "node.key.previous") == 0o600
    finish_rotation(tmp_path, new, new)  # run again after a crash that left node.key already new
    assert (tmp_path / "node.key.previous").read_text().split() == [old.seed.hex()]
    newer = KeyPair.derive("newer")
    finish_rotation(tmp_path, new, newer)
    assert (tmp_path / "node.key.previous").read_text().split() == [old.seed.hex(), new.seed.hex()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key", "node.key.previous"]


# -- naming nodes and the admin ---------------------------------------------------------------------


def _club(joins: bool) -> Scenario:
    s = Scenario(3, name="cli-enclave")
    s.configure(duration=8_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(1, nodes=1)
    s.enclave("club", shards=1, nodes=3, operator_balance=10**12)
    if joins:
        s.roster(1_000, "club", "join")  # apply, then the owner approves
        s.roster(1_100, "club", "remove")  # a random member that is not the owner
    return s


def test_a_node_is_named_by_devnet_name_whole_id_or_unique_prefix() -> None:
    world = build_world(_club(False))
    view = read_roster("club", world.chain().account_objects(roster_id("club")))
    template = next(iter(view.entries.values()))
    ids = [bytes.fromhex("ab01") + b"\0" * 30, bytes.fromhex("ab02") + b"\0" * 30, bytes.fromhex("cd") + b"\0" * 31]
    view = replace(view, entries={n: replace(template, node=n) for n in ids})
    names = {"club/0-n0": ids[0]}
    assert resolve_node("club/0-n0", view, names) == ids[0]
    assert resolve_node(ids[1].hex(), view, names) == ids[1]
    assert resolve_node("AB02", view, names) == ids[1]
    assert resolve_node("c", view, names) == ids[2]
    assert resolve_node("ff" * 32, view, names) == b"\xff" * 32  # a whole id names a node off the roster too
    with pytest.raises(InputError, match="matches 2 nodes"):
        resolve_node("ab0", view, names)
    with pytest.raises(InputError, match="no node on the roster of club"):
        resolve_node("ef", view, names)
    with pytest.raises(InputError, match="neither a node id"):
        resolve_node("club/9-n9", view, names)


def test_the_admin_defaults_to_the_admin_acting_through_the_signing_account() -> None:
    world = build_world(_club(False))
    view = read_roster("club", world.chain().account_objects(roster_id("club")))
    owner = view.owner()
    assert owner is not None
    operator = world.operators["club"]
    assert default_by(view, operator) == owner.node
    with pytest.raises(InputError, match="no MEMBER with the admin trait"):
        default_by(view, b"\x09" * 32)
    member = next(e for e in view.entries.values() if not e.has(OWNER))
    assert default_by(view, operator, member.node) == owner.node  # an admin acts before the node leaves itself


def test_the_table_fits_80_columns_and_names_each_node() -> None:
    world = build_world(_club(False))
    view = read_roster("club", world.chain().account_objects(roster_id("club")))
    out = StringIO()
    Console(file=out, width=80, color_system=None).print(roster_table(view, "genesis", {next(iter(view.entries)): "club/0-n0"}))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for entry in view.entries.values():
        assert entry.node.hex()[:12] in text and entry.key.hex()[:8] in text
    assert "club/0-n0" in text and "admin,owner" in text and "epoch 1, version 0" in text


# -- the roster at any height of a chain file ----------------------------------------------------------


def test_the_roster_is_read_at_any_height_of_a_chain_file(tmp_path: Path) -> None:
    s = _club(True)
    world = build_world(s)
    sim = Simulation(world, tools_for(s.crypto))
    sim.run()
    path = tmp_path / "chain.sgc"
    write_chain(path, world.genesis, sim.blocks)
    changes = [(b.height, log[2], log[3]) for b in sim.blocks for e in b.entries if getattr(e, "ok", False)
               for log in getattr(e, "log", ()) if log[:2] == ["roster", "club"]]
    assert [m for _, m, _ in changes] == ["apply", "approve", "remove"], changes
    (h_apply, _, joined), (h_approve, _, _), (h_remove, _, removed) = changes

    def roster_at(height: int | None) -> dict[str, Any]:
        result = invoke("roster", "club", "--chain", str(path), "--json", *(["--height", str(height)] if height is not None else []))
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def state(report: dict[str, Any], node: bytes) -> str | None:
        return next((e["state"] for e in report["entries"] if e["node"] == node.hex()), None)

    before = roster_at(h_apply - 1)
    assert state(before, joined) is None and before["head"]["epoch"] == 1 and before["read"]["height"] == h_apply - 1
    assert state(roster_at(h_apply), joined) == PENDING
    approved = roster_at(h_approve)
    assert state(approved, joined) == MEMBER and approved["head"]["epoch"] == 2 and joined.hex() in approved["members"]
    last = roster_at(None)
    assert state(last, removed) is None and last["head"]["epoch"] == 3 and removed.hex() not in last["members"]
    assert last["read"]["height"] == sim.chain.heads[last["read"]["shard"]]
    result = invoke("roster", "club", "--chain", str(path), "--height", "9999")
    assert result.exit_code == 2 and "up to height" in result.output
    result = invoke("roster", "nope", "--chain", str(path))
    assert result.exit_code == 2 and "its enclaves: club" in result.output
    result = invoke("roster", "club", "--chain", str(tmp_path / "missing.sgc"))
    assert result.exit_code == 2 and "missing.sgc" in result.output


# -- a real devnet ---------------------------------------------------------------------------------------


def _cli(*args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sagachain", "enclave", *args], capture_output=True, text=True, timeout=60)
    if check is not None:
        assert done.returncode == check, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_an_operator_runs_the_roster_of_a_real_devnet(tmp_path: Path) -> None:
    from node.config import DATABASE_FILE
    from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
    from node.storage import NodeStore

    root = tmp_path / "dn"
    write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=1, accounts=2, enclave_accounts=0, seed=21), metrics=False), root)
    record = load_record(root)
    newcomer = tmp_path / "newcomer"
    old = KeyPair(os.urandom(32))
    write_seed(newcomer, old.seed)
    node = node_id_for(old.public).hex()
    dn = ["--devnet", str(root)]
    admin = [*dn, "--from", "E.operator", "--wait", "--json"]
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)

        applied = json.loads(_cli("apply", "--node-dir", str(newcomer), *dn, "--from", "user0", "--wait", "--json").stdout)
        assert applied["status"] == "final" and applied["after"]["state"] == PENDING and applied["after"]["epoch"] == 1

        approved = json.loads(_cli("approve", node[:10], *admin).stdout)
        assert approved["status"] == "final" and approved["after"] == {"state": MEMBER, "epoch": 2, "version": 2}
        h_approve = approved["final"]["height"]

        shown = _cli("roster", "E", *dn).stdout
        assert node[:12] in shown and "MEMBER" in shown and "E/0-n0" in shown and "epoch 2" in shown

        refused = _cli("remove", "E/0-n0", *dn, "--from", "E.operator", "--wait", check=1)
        assert "MEM-2" in refused.stderr and "owner" in refused.stderr and refused.stderr.count("\n") == 1

        _cli("rotate-key", "--node-dir", str(newcomer), *dn, "--from", "user0")
        new_seed = (newcomer / "node.key").read_text().strip()
        assert new_seed != old.seed.hex() and (newcomer / "node.key.previous").read_text().split() == [old.seed.hex()]
        assert not (newcomer / NEXT_KEY_FILE).exists() and _mode(newcomer / "node.key") == 0o600
        entry = next(e for e in json.loads(_cli("roster", "E", *dn, "--json").stdout)["entries"] if e["node"] == node)
        assert entry["key"] == KeyPair(bytes.fromhex(new_seed)).public.hex() and entry["previous_keys"] == [old.public.hex()]

        removed = json.loads(_cli("remove", node[:10], *admin).stdout)
        assert removed["status"] == "final" and removed["after"]["state"] is None and removed["after"]["epoch"] == 4
    finally:
        stop_devnet(root)

    chain = tmp_path / "chain.sgc"
    p0 = next(n for n in record["nodes"] if n["name"] == "P0-n0")
    with NodeStore.open(root / p0["dir"] / DATABASE_FILE) as store:
        store.export_chain(chain)
    earlier = json.loads(_cli("roster", "E", "--chain", str(chain), "--height", str(h_approve - 1), "--json").stdout)
    assert [e["state"] for e in earlier["entries"] if e["node"] == node] == [PENDING] and earlier["head"]["epoch"] == 1
    latest = json.loads(_cli("roster", "E", "--chain", str(chain), "--json").stdout)
    assert node not in {e["node"] for e in latest["entries"]} and latest["head"]["epoch"] == 4
    audit = subprocess.run([sys.executable, "-m", "sagachain", "audit", str(chain), "--quiet"], capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stdout[-2000:]


def test_join_builds_its_own_epoch_and_only_an_auto_join_roster_admits_it() -> None:
    """``enclave join``'s transaction, built from the roster as the command reads it, run as a
    validator would: MEMBER at once in a new epoch under auto-join; refused (MEM-2) without."""
    from sagachain.core.roster import entry_id, entry_of, head_of
    from sagachain.core.roster_calls import key_proof, roster_change
    from sagachain.enclave_calls import Acting, RosterCall, build_transaction
    from shards.execution import execute

    for auto_join in (True, False):
        s = Scenario(4, name="cli-join")
        s.public_shards(1, nodes=1)
        s.enclave("club", shards=1, nodes=3, auto_join=auto_join, operator_balance=10**12)
        world = build_world(s)
        chain = world.chain()
        view = read_roster("club", chain.account_objects(roster_id("club")))
        operator = world.operators["club"]
        newcomer = KeyPair.derive("cli-join", "newcomer")
        node = node_id_for(newcomer.public)
        acting = Acting(devnet=None, key=world.account_keys[operator], account=operator, enclave="club", address=None, node_key=None,
                        nonce=1, gas=None, wait=False, timeout=1.0, as_json=False)
        call = RosterCall("join", node, {"key": newcomer.public, "proof": key_proof("club", node, newcomer, operator), "shards": ["club/0"]},
                          change=roster_change("join", node, None, newcomer.public))
        tx, rekey = build_transaction(view, acting, call, chain_nonce=0)
        entry = execute(chain, chain.owner[roster_id("club")], tx, time=1).entry
        if auto_join:
            assert entry.ok, entry.error
            written = {u.id: u.value for u in entry.updates}
            joined, head = entry_of(written[entry_id("club", node)]), head_of(written[roster_id("club")])
            assert rekey and joined is not None and joined.state == MEMBER and joined.shards == ("club/0",)
            assert head is not None and head.epoch == view.head.epoch + 1
        else:
            assert not entry.ok and "MEM-2" in (entry.error or "")
