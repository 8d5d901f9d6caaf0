"""The local devnet: its plan, the files it writes, its process handling, the load it sends.

The unit tests need no node: they check the plan of nodes, ports and
accounts, the data directories and devnet.json, the refusal of a busy
directory, stopping processes, and the load's schedule and report. The tests
marked slow start real node processes (``node/server.py``) and skip, saying
so, only where that module does not exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.config import KEY_FILE, load_config, load_key
from node.devnet import (
    GENESIS_FILE,
    READY_FILE,
    RECORD_FILE,
    DevnetSpec,
    check_free,
    load_record,
    pid_alive,
    plan_devnet,
    plan_ports,
    remove_stopped,
    save_record,
    stop_devnet,
    wait_ready,
    write_devnet,
)
from node.devnet_load import LoadSpec, LoadTracker, last_nonces, parse_mix, percentile, plan_load
from sagachain.cli import main
from sagachain.core.chainfile import read_chain
from sagachain.core.keys import verify
from sagachain.errors import InputError
from shards.enclave_store import EnclaveStore

SMALL = DevnetSpec(shards=2, enclave_shards=1, nodes_per_shard=2, accounts=4, enclave_accounts=2, seed=3)


@pytest.fixture(scope="module")
def plan():  # type: ignore[no-untyped-def]
    return plan_devnet(SMALL, base_port=21000)


@pytest.fixture
def made(tmp_path: Path, plan):  # type: ignore[no-untyped-def]
    root = tmp_path / "dn"
    return root, write_devnet(plan, root)


def _sleeper(*args: str, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A real process whose command line names ``args`` (how a node's names its directory)."""
    code = "import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "") + "print('up', flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"  # the handler is in place
    return proc


# -- the plan ---------------------------------------------------------------------------


def test_every_committee_seat_is_one_node_with_its_genesis_key(plan) -> None:  # type: ignore[no-untyped-def]
    genesis = plan.world.genesis
    seats = [(s.id, m) for s in genesis.shards for m in s.committee]
    assert len(plan.nodes) == len(seats) == (SMALL.shards + SMALL.enclave_shards) * SMALL.nodes_per_shard
    by_name = {n.name: n for n in genesis.nodes}
    for node, (shard, member) in zip(plan.nodes, seats):
        assert by_name[node.name].id == member
        assert bytes.fromhex(node.node_key) == by_name[node.name].public_key
        assert node.shards == (shard,)
        assert node.enclaves == (("E",) if shard.startswith("E/") else ())
    assert len({n.dir for n in plan.nodes}) == len(plan.nodes)
    assert all("/" not in n.dir.removeprefix("nodes/") for n in plan.nodes)  # E/0-n0 must not nest


def test_ports_come_from_the_base_port_or_are_free_and_distinct(plan) -> None:  # type: ignore[no-untyped-def]
    count = len(plan.nodes)
    assert [n.listen for n in plan.nodes] == [f"127.0.0.1:{21000 + i}" for i in range(count)]
    assert [n.metrics for n in plan.nodes] == [f"127.0.0.1:{21000 + count + i}" for i in range(count)]
    listen, metrics = plan_ports(6, None, metrics=True)
    assert len(set(listen + metrics)) == 12
    assert plan_ports(3, 7000, metrics=False) == ([7000, 7001, 7002], [])
    with pytest.raises(InputError, match="--base-port 65530"):
        plan_ports(8, 65530, metrics=True)


def test_accounts_are_the_genesis_accounts_with_their_keys_and_shards(plan) -> None:  # type: ignore[no-untyped-def]
    genesis = plan.world.genesis
    signing = [a for a in genesis.accounts if a.id in plan.world.account_keys]
    assert [a.name for a in plan.accounts] == [a.name for a in signing]
    assert {a.name for a in genesis.accounts} - {a.name for a in signing} == {"E.roster", "E.mailbox", "registry"}
    names = {a.name: a for a in plan.accounts}
    assert {f"user{i}" for i in range(SMALL.accounts)} <= set(names)
    vaults = [a for a in plan.accounts if a.name.startswith("vault")]
    assert len(vaults) == SMALL.enclave_accounts and all(v.enclave == "E" and v.shard.startswith("E/") for v in vaults)
    for account in signing:
        assert plan.world.account_keys[account.id].seed.hex() == names[account.name].seed


def test_the_same_spec_gives_the_same_chain_and_another_seed_another() -> None:
    first = plan_devnet(SMALL, base_port=21000).world.genesis.hash
    assert plan_devnet(SMALL, base_port=22000).world.genesis.hash == first
    assert plan_devnet(DevnetSpec(**{**SMALL.__dict__, "seed": 4}), base_port=21000).world.genesis.hash != first


@pytest.mark.parametrize(
    ("spec", "option"),
    [
        (DevnetSpec(shards=0), "--shards 0"),
        (DevnetSpec(nodes_per_shard=0), "--nodes-per-shard 0"),
        (DevnetSpec(accounts=1), "--accounts 1"),
        (DevnetSpec(enclave_shards=0, enclave_accounts=2), "--enclave-accounts 2"),
    ],
)
def test_shapes_that_cannot_work_are_refused_naming_the_option(spec: DevnetSpec, option: str) -> None:
    with pytest.raises(InputError, match=option):
        spec.check()


# -- the files --------------------------------------------------------------------------


def test_node_directories_hold_key_config_database_and_pinned_peers(made, plan) -> None:  # type: ignore[no-untyped-def]
    root, record = made
    genesis = read_chain(root / GENESIS_FILE).genesis
    assert genesis.hash == plan.world.genesis.hash and record["genesis_hash"] == genesis.hash.hex()
    for node in plan.nodes:
        directory = root / node.dir
        assert oct((directory / KEY_FILE).stat().st_mode & 0o777) == "0o600"
        assert load_key(directory).public.hex() == node.node_key
        config = load_config(directory)
        assert (config.name, config.listen, config.metrics, config.shards, config.enclaves) == (node.name, node.listen, node.metrics, node.shards, node.enclaves)
        assert Path(config.genesis) == (root / GENESIS_FILE).resolve()
        assert {(p.address, p.node_key) for p in config.peers} == {(o.listen, o.node_key) for o in plan.nodes if o is not node}
        assert (directory / "node.sqlite").is_file()


def test_enclave_members_derive_epoch_one_and_open_the_initial_state_others_nothing(made, plan) -> None:  # type: ignore[no-untyped-def]
    """No key file is handed out: each founding member derives epoch 1's key from the roster's
    public key material and its own seed (MEM-3), and that key opens its genesis bundle."""
    from node.enclave_keys import EnclaveKeys
    from sagachain.core.ledger import ChainState
    from sagachain.core.objects import node_id_for

    root, _ = made
    chain = ChainState(plan.world.genesis)
    commitment = next(e.state_commitment for e in plan.world.genesis.enclaves if e.id == "E")
    for node in plan.nodes:
        directory = root / node.dir
        keys = EnclaveKeys("E", node_id_for(bytes.fromhex(node.node_key)), [node.seed])
        keys.follow(chain)
        if not node.enclaves:
            assert not list(directory.glob("enclave-*"))
            assert keys.latest() is None  # a public shard's node holds no epoch key
            continue
        assert not (directory / "enclave-E.key").exists()
        assert keys.latest() == (1, plan.world.enclave_keys["E"])
        store = EnclaveStore.unseal(keys.keys[1], (directory / "enclave-E.genesis").read_bytes())
        assert store.commitment() == commitment
    assert (root / "enclaves" / "E.sealed").read_bytes() == (root / plan.nodes[-1].dir / "enclave-E.genesis").read_bytes()


def test_devnet_json_names_every_node_and_account(made, plan) -> None:  # type: ignore[no-untyped-def]
    root, _ = made
    record = load_record(root)
    assert record["enclaves"] == ["E"]
    assert [(n["name"], n["dir"], n["address"], n["node_key"], n["shards"], n["enclaves"], n["pid"]) for n in record["nodes"]] == [
        (n.name, n.dir, n.listen, n.node_key, list(n.shards), list(n.enclaves), None) for n in plan.nodes
    ]
    vault = next(a for a in record["accounts"] if a["name"] == "vault1")
    assert vault["enclave"] == "E" and len(bytes.fromhex(vault["id"])) == 32 and len(bytes.fromhex(vault["seed"])) == 32
    assert next(a for a in record["accounts"] if a["name"] == "user0")["enclave"] is None


def test_a_damaged_or_missing_record_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no devnet"):
        load_record(tmp_path)
    (tmp_path / RECORD_FILE).write_text("{}")
    with pytest.raises(InputError, match="not a devnet record"):
        load_record(tmp_path)


# -- processes --------------------------------------------------------------------------


def test_a_directory_with_a_running_devnet_is_refused(made) -> None:  # type: ignore[no-untyped-def]
    root, record = made
    node = record["nodes"][0]
    proc = _sleeper(str((root / node["dir"]).resolve()))
    try:
        node["pid"] = proc.pid
        save_record(root, record)
        with pytest.raises(InputError, match="running devnet .*devnet down"):
            check_free(root)
        with pytest.raises(InputError, match="running devnet"):
            remove_stopped(root)
        result = CliRunner().invoke(main, ["devnet", "up", "--dir", str(root)])
        assert result.exit_code == 2 and "running devnet" in result.output
    finally:
        proc.kill()
        proc.wait()


def test_a_recorded_pid_of_another_program_is_not_a_running_node(made) -> None:  # type: ignore[no-untyped-def]
    root, record = made
    other = _sleeper("something-else")
    try:
        record["nodes"][0]["pid"] = other.pid
        save_record(root, record)
        with pytest.raises(InputError, match="stopped devnet; pass --fresh"):
            check_free(root)
        assert stop_devnet(root, timeout=1)[0].how == "not running"
        assert other.poll() is None  # never signalled
    finally:
        other.kill()
        other.wait()
    remove_stopped(root)
    assert not (root / RECORD_FILE).exists() and not (root / "nodes").exists()
    check_free(root)  # empty again


def test_a_non_empty_directory_that_is_no_devnet_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not empty"):
        check_free(tmp_path)


def test_down_terminates_then_kills_and_is_idempotent(made) -> None:  # type: ignore[no-untyped-def]
    root, record = made
    polite = _sleeper(str((root / record["nodes"][0]["dir"]).resolve()))
    stubborn = _sleeper(str((root / record["nodes"][1]["dir"]).resolve()), ignore_term=True)
    record["nodes"][0]["pid"], record["nodes"][1]["pid"] = polite.pid, stubborn.pid
    save_record(root, record)
    started = time.monotonic()
    hows = {s.name: s.how for s in stop_devnet(root, timeout=1.0)}
    assert time.monotonic() - started < 5
    assert hows[record["nodes"][0]["name"]] == "terminated"
    assert hows[record["nodes"][1]["name"]] == "killed"
    assert not pid_alive(polite.pid) and not pid_alive(stubborn.pid)  # (reaped by down's check: no status left for Popen)
    assert all(n["pid"] is None for n in load_record(root)["nodes"])
    assert {s.how for s in stop_devnet(root, timeout=1.0)} == {"not running"}
    result = CliRunner().invoke(main, ["devnet", "down", "--dir", str(root)])
    assert result.exit_code == 0 and "were not running" in result.output


def test_wait_ready_takes_the_address_from_node_ready_and_names_a_node_that_died(made) -> None:  # type: ignore[no-untyped-def]
    root, record = made
    record["nodes"] = record["nodes"][:2]
    first, second = record["nodes"]
    alive = _sleeper(str((root / first["dir"]).resolve()))
    dead = subprocess.Popen([sys.executable, "-c", "import sys; print('boom: no genesis'); sys.exit(3)"],
                            stdout=(root / second["dir"] / "node.out").open("wb"), stderr=subprocess.STDOUT)
    try:
        first["pid"], second["pid"] = alive.pid, dead.pid
        (root / first["dir"] / READY_FILE).write_text(json.dumps({"address": "127.0.0.1:9", "metrics": "", "pid": alive.pid}))
        dead.wait()
        with pytest.raises(InputError, match=rf"(?s)node {second['name']} exited \(status 3\).*node.log.*boom: no genesis"):
            wait_ready(root, record, {first["name"]: alive, second["name"]: dead}, timeout=5)
        assert load_record(root)["nodes"][0]["address"] == "127.0.0.1:9"
        record["nodes"] = [first]
        (root / first["dir"] / READY_FILE).write_text(json.dumps({"address": "127.0.0.1:9", "metrics": "", "pid": 1}))  # stale
        with pytest.raises(InputError, match=rf"{first['name']} not ready after 1 s.*node.log"):
            wait_ready(root, record, {first["name"]: alive}, timeout=1)
    finally:
        alive.kill()
        alive.wait()


def test_every_devnet_command_has_an_example() -> None:
    for command in ("up", "down", "load", "status"):
        result = CliRunner().invoke(main, ["devnet", command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, command



def test_docs_devnet_md_names_every_option_of_every_devnet_command() -> None:
    from sagachain.cli_devnet import devnet

    text = (Path(__file__).resolve().parents[1] / "docs" / "DEVNET.md").read_text()
    for name, command in devnet.commands.items():
        assert f"devnet {name}" in text, name
        for param in command.params:
            for flag in [*param.opts, *param.secondary_opts]:
                if flag != "--help":
                    assert flag in text, f"devnet {name} {flag} is not in docs/DEVNET.md"

# -- the load ---------------------------------------------------------------------------


def test_mix_shares_are_parsed_and_checked() -> None:
    assert parse_mix("open=0.5, mixed=0.5") == {"open": 0.5, "enclave": 0.0, "mixed": 0.5}
    for bad, message in [("open=0.5", "add up to 1"), ("swap=1", "KIND=SHARE"), ("open=lots", "must be a number"), ("open=1.5,enclave=-0.5", ">= 0")]:
        with pytest.raises(InputError, match=message):
            parse_mix(bad)


def test_a_load_schedule_has_the_rate_the_shares_the_routes_and_the_nonces(made) -> None:  # type: ignore[no-untyped-def]
    root, record = made
    accounts = {a["id"]: a for a in record["accounts"]}
    load = LoadSpec(rate=40, duration=5, mix=parse_mix("open=0.5,enclave=0.25,mixed=0.25"), seed=7)
    planned = plan_load(record, load, {record["accounts"][1]["id"]: 10})
    assert len(planned) == 200
    assert Counter(p.kind for p in planned) == {"open": 100, "enclave": 50, "mixed": 50}
    assert [p.at for p in planned] == sorted(p.at for p in planned) and 0 <= planned[0].at and planned[-1].at < 5
    per_sender: dict[bytes, list[int]] = {}
    for item in planned:
        tx = item.tx
        assert verify(load_key_public(record, tx.sender), tx.id, tx.signature)
        touched = [accounts[u.account.hex()] for u in tx.accounts]
        enclave = [a for a in touched if a["enclave"]]
        assert item.shard == (enclave[0]["shard"] if enclave else accounts[tx.gas_payer.hex()]["shard"])
        assert (item.kind == "open") == (not enclave)
        per_sender.setdefault(tx.sender, []).append(tx.nonce)
    for sender, nonces in per_sender.items():
        first = 11 if sender.hex() == record["accounts"][1]["id"] else 1
        assert nonces == list(range(first, first + len(nonces)))
    assert last_nonces(planned)[record["accounts"][1]["id"]] == 10 + len(per_sender.get(bytes.fromhex(record["accounts"][1]["id"]), []))
    again = plan_load(record, load, {record["accounts"][1]["id"]: 10})
    assert [p.tx.id for p in again] == [p.tx.id for p in planned]
    other = plan_load(record, LoadSpec(rate=40, duration=5, mix=load.mix, seed=8))
    assert [p.tx.id for p in other] != [p.tx.id for p in planned]


def load_key_public(record: dict, sender: bytes) -> bytes:  # type: ignore[type-arg]
    """The public key the genesis gives ``sender`` (what a node checks the signature with)."""
    from sagachain.core.keys import KeyPair

    seed = next(a["seed"] for a in record["accounts"] if a["id"] == sender.hex())
    return KeyPair(bytes.fromhex(seed)).public


def test_a_devnet_without_vaults_refuses_enclave_load(tmp_path: Path) -> None:
    record = write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=1, enclave_accounts=0), base_port=23000), tmp_path / "open")
    with pytest.raises(InputError, match="--mix open=1"):
        plan_load(record, LoadSpec(rate=10, duration=1))
    assert {p.kind for p in plan_load(record, LoadSpec(rate=10, duration=1, mix=parse_mix("open=1")))} == {"open"}


def test_the_report_counts_first_sightings_and_measures_latency(made) -> None:  # type: ignore[no-untyped-def]
    _, record = made
    planned = plan_load(record, LoadSpec(rate=4, duration=1, mix=parse_mix("open=1")))
    ids = [p.tx.id for p in planned]
    tracker = LoadTracker(planned)
    for i, tx_id in enumerate(ids):
        tracker.on_sent(tx_id, 10.0 + i)
    tracker.on_receipt(ids[0], True, None)
    tracker.on_receipt(ids[1], True, None)
    tracker.on_receipt(ids[2], True, None)
    tracker.on_receipt(ids[3], False, "TX-1")
    assert tracker.outstanding() == 3
    tracker.on_block({"shard": "P0", "height": 1, "txs": [ids[0], b"\0" * 32], "ok": [True, True]}, 10.5)
    tracker.on_block({"shard": "P0", "height": 1, "txs": [ids[0], ids[1]], "ok": [True, True]}, 99.0)  # a second node's copy
    tracker.on_block({"shard": "P1", "height": 1, "txs": [ids[1]], "ok": [False]}, 12.0)
    report = tracker.report(LoadSpec(rate=4, duration=1))
    assert (report.submitted, report.accepted, report.committed, report.failed_in_block, report.pending) == (4, 3, 2, 1, 1)
    assert report.rejected == {"TX-1": 1} and report.blocks == 2
    assert report.latency_ms == {"p50": 500.0, "p90": 1000.0, "p99": 1000.0}
    assert report.window == 2.0 and report.committed_tps == 1.0
    assert report.by_kind["open"] == {"submitted": 4, "accepted": 3, "committed": 2}


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([5.0], 99) == 5.0


# -- with real node processes -------------------------------------------------------------

SERVER = Path(__file__).resolve().parents[1] / "node" / "server.py"
needs_node = pytest.mark.skipif(not SERVER.exists(), reason="node/server.py (the node process) does not exist yet")


@pytest.mark.slow
@needs_node
def test_a_devnet_commits_open_enclave_and_mixed_load_and_every_node_audits_clean(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    runner = CliRunner()
    result = runner.invoke(main, ["devnet", "up", "--dir", str(root), "--shards", "1", "--enclave-shards", "1",
                                  "--nodes-per-shard", "2", "--timeout", "30"])
    assert result.exit_code == 0, result.output
    try:
        record = load_record(root)
        assert len(record["nodes"]) == 4 and all(pid_alive(n["pid"], root / n["dir"]) for n in record["nodes"])
        assert sum(1 for n in record["nodes"] if n["enclaves"] == ["E"]) == 2
        result = runner.invoke(main, ["devnet", "load", "--dir", str(root), "--rate", "12", "--duration", "3",
                                      "--mix", "open=0.4,enclave=0.3,mixed=0.3", "--json", str(tmp_path / "load.json")])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "load.json").read_text())
        assert report["planned"] == report["submitted"] == report["accepted"] == report["committed"] == 36
        assert report["rejected"] == {} and report["pending"] == 0 and report["failed_in_block"] == 0
        assert {k: v["committed"] for k, v in report["by_kind"].items()} == {"open": 14, "enclave": 11, "mixed": 11}  # 36 x 0.4/0.3/0.3, largest remainders
        assert report["latency_ms"]["p50"] is not None and report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
        result = runner.invoke(main, ["devnet", "status", "--dir", str(root)], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and result.output.count("running") == 4
        # a second load goes on from the nonces the first one signed
        result = runner.invoke(main, ["devnet", "load", "--dir", str(root), "--rate", "10", "--duration", "1",
                                      "--mix", "open=1", "--json", str(tmp_path / "again.json")])
        again = json.loads((tmp_path / "again.json").read_text())
        assert again["committed"] == again["planned"] == 10 and again["rejected"] == {}
    finally:
        result = runner.invoke(main, ["devnet", "down", "--dir", str(root)])
    assert result.exit_code == 0 and "4 terminated" in result.output, result.output
    for node in record["nodes"]:
        audit = runner.invoke(main, ["audit", str(root / node["dir"]), "--enclave-state", str(root / "enclaves" / "E.sealed"),
                                     "--enclave-key", str(root / "enclaves" / "E.key")])
        assert audit.exit_code == 0, f"{node['name']}: {audit.output}"


@pytest.mark.slow
@needs_node
def test_a_node_killed_during_load_keeps_what_it_reported_final_and_catches_up(tmp_path: Path) -> None:
    import trio

    from node.client import ClientError, open_client
    from node.devnet import spawn_node, up
    from node.devnet_load import run_load
    from node.storage import NodeStore

    root = tmp_path / "devnet"
    record = up(root, DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=4, enclave_accounts=0), metrics=False, timeout=30)
    victim = record["nodes"][3]  # not one the load watches: its reports are followed here
    victim_dir = root / victim["dir"]
    load = LoadSpec(rate=20, duration=6, mix=parse_mix("open=1"), seed=5)
    planned = plan_load(record, load)
    reported: set[bytes] = set()
    before_kill: set[bytes] = set()

    async def follow_victim(task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
        try:
            async with open_client(victim["address"]) as client, client.subscribe(["blocks"]) as events:
                task_status.started()
                async for event in events:
                    reported.update(bytes(t) for t in event.data["txs"])
        except ClientError:
            pass  # killed

    async def heights(address: str) -> dict[str, int]:
        async with open_client(address) as client:
            data = (await client.status()).data
        return {shard: info["height"] for shard, info in data["shards"].items()}

    async def scenario() -> tuple[object, dict[str, int], dict[str, int]]:
        async with trio.open_nursery() as nursery:
            await nursery.start(follow_victim)
            outcome: dict[str, object] = {}

            async def loading() -> None:
                outcome["report"] = await run_load(record, load, planned, drain=15)

            nursery.start_soon(loading)
            await trio.sleep(2.5)
            before_kill.update(reported)
            os.kill(victim["pid"], 9)
            while pid_alive(victim["pid"]):
                await trio.sleep(0.02)
            await trio.sleep(1.0)
            victim["pid"] = spawn_node(root, victim).pid  # python -m sagachain node start DIR
            save_record(root, record)
            await trio.to_thread.run_sync(lambda: wait_ready(root, {**record, "nodes": [victim]}, None, 30))
        others = await heights(record["nodes"][0]["address"])
        mine: dict[str, int] = {}
        with trio.fail_after(20):
            while True:
                mine = await heights(victim["address"])
                if all(mine.get(s, 0) >= h for s, h in others.items()):
                    break
                await trio.sleep(0.2)
        async with open_client(victim["address"]) as client:
            for tx_id in before_kill:
                assert (await client.receipt(tx_id)).status == "final", tx_id.hex()
        return outcome["report"], others, mine

    try:
        report, others, mine = trio.run(scenario)
    finally:
        stop_devnet(root, timeout=10)
    assert before_kill, "the victim reported no final transaction before it was killed; the test proved nothing"
    assert report.committed == report.planned == 120, report  # type: ignore[attr-defined]
    assert others["P0"] > 0 and mine["P0"] >= others["P0"]
    with NodeStore.open(victim_dir / "node.sqlite") as store:
        stored = {entry.tx.id for final in store.blocks() for entry in final.block.tx_entries()}
    assert before_kill <= stored
