"""A node's data directory: key file permissions, the config file, the init and status commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.config import CONFIG_FILE, KEY_FILE, NodeConfig, Peer, init_node, load_config, load_key
from sagachain.cli import main
from sagachain.errors import InputError

PEER_KEY = "ab" * 32


def test_init_writes_a_private_key_and_a_config_that_round_trips(tmp_path: Path) -> None:
    config = NodeConfig(name="n1", listen="127.0.0.1:7101", shards=("P0",), enclaves=("acme",), peers=(Peer("127.0.0.1:7102", PEER_KEY),))
    key = init_node(tmp_path / "n1", config, seed=b"\1" * 32)
    assert oct(os.stat(tmp_path / "n1" / KEY_FILE).st_mode & 0o777) == "0o600"
    assert load_key(tmp_path / "n1").public == key.public
    assert load_config(tmp_path / "n1") == config


def test_init_never_overwrites_a_node(tmp_path: Path) -> None:
    init_node(tmp_path, NodeConfig(name="n1"))
    with pytest.raises(InputError, match="already holds a node"):
        init_node(tmp_path, NodeConfig(name="n2"))


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    init_node(tmp_path, NodeConfig(name="n1"))
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        load_key(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = ", "not valid TOML"),
        ('name = "n"\ncolour = "red"', "unknown setting"),
        ('name = "n"\nlisten = "localhost"', "host:port"),
        ('name = "n"\n[[peers]]\nnode_key = "00"', "needs an `address`"),
        ('name = "n"\n[[peers]]\naddress = "127.0.0.1:1"\nnode_key = "zz"', "64 hex digits"),
        ('listen = "127.0.0.1:1"', "name"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(tmp_path)


def test_a_peer_without_a_key_is_pinned_on_first_contact(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('name = "n"\n[[peers]]\naddress = "127.0.0.1:1"\n')
    assert load_config(tmp_path).peers[0].node_key == ""


def test_node_init_and_status_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["node", "init", str(tmp_path / "n1"), "--name", "n1", "--shard", "P0", "--peer", f"127.0.0.1:7102={PEER_KEY}"])
    assert made.exit_code == 0, made.output
    assert "node key" in made.output
    shown = runner.invoke(main, ["node", "status", str(tmp_path / "n1")])
    assert shown.exit_code == 0 and "P0" in shown.output and "127.0.0.1:7102" in shown.output
    again = runner.invoke(main, ["node", "init", str(tmp_path / "n1"), "--name", "x"])
    assert again.exit_code == 2
    unpinned = runner.invoke(main, ["node", "init", str(tmp_path / "n2"), "--name", "n2", "--peer", "127.0.0.1:1"])
    assert unpinned.exit_code == 0 and load_config(tmp_path / "n2").peers[0].node_key == ""  # pinned on first contact
    bad_peer = runner.invoke(main, ["node", "init", str(tmp_path / "n5"), "--name", "n5", "--peer", "127.0.0.1=00"])
    assert bad_peer.exit_code == 2
    with_metrics = runner.invoke(main, ["node", "init", str(tmp_path / "n3"), "--name", "n3", "--metrics", "127.0.0.1:9101"])
    assert with_metrics.exit_code == 0 and load_config(tmp_path / "n3").metrics == "127.0.0.1:9101"
    bad_metrics = runner.invoke(main, ["node", "init", str(tmp_path / "n4"), "--name", "n4", "--metrics", "nowhere"])
    assert bad_metrics.exit_code == 2 and "host:port" in bad_metrics.output


def test_init_with_a_genesis_creates_the_database_and_audit_reads_the_directory(tmp_path: Path) -> None:
    from chainkit import simulate, small

    from node.config import DATABASE_FILE
    from node.storage import NodeStore
    from sagachain.core.chainfile import write_chain

    run = simulate(small)
    genesis_file = tmp_path / "genesis.sgc"
    write_chain(genesis_file, run.genesis, [])
    runner = CliRunner()
    made = runner.invoke(main, ["node", "init", str(tmp_path / "n1"), "--name", "n1", "--genesis", str(genesis_file), "--shard", "P0"])
    assert made.exit_code == 0, made.output
    with NodeStore.open(tmp_path / "n1" / DATABASE_FILE) as store:
        for block in run.blocks:
            updates = {u.id: u.value for e in block.entries for u in getattr(e, "updates", ())}
            store.append_final(block, updates)
    shown = runner.invoke(main, ["node", "status", str(tmp_path / "n1")])
    assert shown.exit_code == 0 and f"{len(run.blocks)}" in shown.output
    audited = runner.invoke(main, ["audit", str(tmp_path / "n1"), "--quiet"])
    assert audited.exit_code == 0, audited.output
    exported = runner.invoke(main, ["node", "export", str(tmp_path / "n1"), str(tmp_path / "n1.sgc")])
    assert exported.exit_code == 0 and f"{len(run.blocks)} blocks" in exported.output
    assert runner.invoke(main, ["audit", str(tmp_path / "n1.sgc"), "--quiet"]).exit_code == 0
    missing = runner.invoke(main, ["node", "export", str(tmp_path / "nowhere"), str(tmp_path / "x.sgc")])
    assert missing.exit_code == 2 and "sagachain node init" in missing.output
    empty = runner.invoke(main, ["audit", str(tmp_path), "--quiet"])
    assert empty.exit_code == 2 and "node.sqlite" in empty.output
