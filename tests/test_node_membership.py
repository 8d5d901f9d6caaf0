"""An enclave's membership on real node processes (MEM-1..MEM-3), driven by the operator commands.

A spare node (its key unknown to the genesis) applies to enclave E asking for
a seat on E/0, and the owner's account approves it. The node then derives the
new epoch's key from the roster alone, receives the current state from a
member, takes its seat and signs enclave blocks. Its operator rotates its
key and restarts it: the peers, which pinned the old key, accept the new one
because the roster records the rotation (MEM-5), and the node signs with the
key the roster holds for it at each height. After the owner removes it,
the members refuse it the state (MEM-1), it holds no key of the new epoch
(MEM-3), the committee goes on without it, and every node's chain audits
clean against the roster at each height.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from devnet_kit import node_log, node_named, wait_for
from node.client import open_client
from node.config import DATABASE_FILE, load_key, load_previous_keys
from node.devnet import DevnetSpec, load_record, plan_devnet, read_ready, save_record, spawn_node, start_nodes, stop_devnet, wait_ready, write_devnet
from node.enclave_keys import EnclaveKeys
from node.storage import NodeStore
from sagachain.core.encoding import decode
from sagachain.core.keys import KeyPair, verify
from sagachain.core.objects import node_id_for
from sagachain.core.tx import make_transaction

pytestmark = pytest.mark.slow

SPEC = DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=2, accounts=3, enclave_accounts=1, seed=17, spare_nodes=1)


def _enclave(root: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "sagachain", "enclave", *args, "--devnet", str(root), "--wait"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"sagachain enclave {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _final(address: str, tx: Any) -> Any:
    """Submit ``tx`` to the node at ``address``; the block it is final in."""

    async def main() -> Any:
        async with open_client(address) as client:
            receipt = await client.submit(tx)
            assert receipt.accepted, receipt.reason
            with trio.fail_after(45):
                while True:
                    answer = await client.receipt(tx.id)
                    if answer.status == "final":
                        assert answer.ok
                        return (await client.block(answer.shard, answer.height)).block
                    await trio.sleep(0.2)

    return trio.run(main)


def _signers(block: Any) -> set[bytes]:
    return {vote.signer for vote in block.qc}


def _signature_key(block: Any, node: bytes, keys: tuple[bytes, ...]) -> bytes:
    """Which of ``keys`` made the node's vote in ``block``'s quorum certificate."""
    vote = next(v for v in block.qc if v.signer == node)
    for key in keys:
        if verify(key, block.hash, vote.signature):
            return key
    raise AssertionError("the vote verifies under none of the node's keys")


def _keys(directory: Path, node: dict[str, Any]) -> EnclaveKeys:
    """The epoch keys a node derives from its own chain and seeds (the rotated-away ones first)."""
    seeds = [k.seed for k in load_previous_keys(directory)] + [load_key(directory).seed]
    with NodeStore.open(directory / DATABASE_FILE) as store:
        chain = store.replay()
    keys = EnclaveKeys("E", node_id_for(bytes.fromhex(node["node_key"])), seeds)
    keys.follow(chain)
    return keys


def test_a_node_applies_is_approved_serves_and_after_removal_is_refused_and_holds_no_new_key(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(SPEC, metrics=False), root)
    record = load_record(root)
    spare, member = node_named(record, "spare0"), node_named(record, "E/0-n0")
    spare_id = node_id_for(bytes.fromhex(spare["node_key"]))
    accounts = {a["name"]: a for a in record["accounts"]}
    user, vault = accounts["user0"], accounts["vault0"]
    user_key, user_id = KeyPair(bytes.fromhex(user["seed"])), bytes.fromhex(user["id"])

    def record_tx(nonce: int) -> Any:
        return make_transaction(key=user_key, sender=user_id, nonce=nonce, gas_limit=100_000, gas_payer=user_id,
                                accounts={"v": bytes.fromhex(vault["id"])}, script=f"v.record({nonce})")

    try:
        procs = start_nodes(root, record)
        wait_ready(root, record, procs, timeout=60)
        assert "holds the key" not in node_log(root, spare)

        _enclave(root, "apply", "--from", "user2", "--node-dir", str(root / spare["dir"]), "--seat", "E/0")
        _enclave(root, "approve", "spare0", "--from", "E.operator")
        wait_for(lambda: "holds the key of epoch 2" in node_log(root, spare), 30, "the new member to derive the epoch key")
        wait_for(lambda: "joined enclave E" in node_log(root, spare), 30, "the new member to receive the state")
        # the committee of an enclave block is fixed by its parent (``ChainState.committee_at``): the
        # first E/0 block after the approval still has the old committee and its successors the new one
        assert spare_id not in _signers(_final(spare["address"], record_tx(1)))
        wait_for(lambda: "the roster seats this node" in node_log(root, spare), 30, "the new member to take its seat")
        block = _final(spare["address"], record_tx(2))
        assert block.shard == "E/0" and spare_id in _signers(block)  # it signs: a committee of 3 needs all 3

        # the operator rotates the node's key and restarts it: every peer pinned the old key, and
        # accepts the new one only because the roster records the rotation (MEM-5)
        old_key = bytes.fromhex(spare["node_key"])
        _enclave(root, "rotate-key", "--from", "user2", "--node-dir", str(root / spare["dir"]))
        new_key = KeyPair(bytes.fromhex((root / spare["dir"] / "node.key").read_text().strip())).public
        assert new_key != old_key
        procs["spare0"].terminate()
        procs["spare0"].wait(timeout=20)
        procs["spare0"] = spawn_node(root, spare)
        spare["pid"] = procs["spare0"].pid
        save_record(root, record)
        wait_for(lambda: read_ready(root / spare["dir"]) is not None, 30, "the restarted node")
        assert read_ready(root / spare["dir"])["node_key"] == new_key.hex()  # type: ignore[index]
        assert _signature_key(_final(member["address"], record_tx(3)), spare_id, (old_key, new_key)) == old_key  # until a block sees the rotation
        assert _signature_key(_final(member["address"], record_tx(4)), spare_id, (old_key, new_key)) == new_key
        peers_logs = "".join(node_log(root, n) for n in record["nodes"] if n["name"] != "spare0")
        assert f"pinned key {new_key.hex()[:16]}" in peers_logs  # the pin moved, on the roster's word
        assert "refused peer" not in peers_logs and "refused an incoming connection" not in peers_logs

        _enclave(root, "remove", "spare0", "--from", "E.operator")
        wait_for(lambda: "no key for epoch 4" in node_log(root, spare), 30, "the removed node to notice it holds no new key")
        assert spare_id in _signers(_final(member["address"], record_tx(5)))  # seated until a block sees the removal
        wait_for(lambda: "seat ended" in node_log(root, spare), 30, "the removed node to leave its seat")
        assert spare_id not in _signers(_final(member["address"], record_tx(6)))
        wait_for(lambda: "not a MEMBER of enclave E" in node_log(root, spare), 40, "the members to refuse the removed node the state")
        assert "refused enclave state to" in "".join(node_log(root, n) for n in record["nodes"] if n["name"].startswith("E/"))
    finally:
        stop_devnet(root)

    spare_keys, member_keys = _keys(root / spare["dir"], spare), _keys(root / member["dir"], member)
    assert sorted(spare_keys.keys) == [2, 3] and spare_keys.epoch == 4  # only the epochs it was a member in
    assert sorted(member_keys.keys) == [1, 2, 3, 4]
    assert member_keys.keys[4] not in spare_keys.keys.values()
    with NodeStore.open(root / spare["dir"] / DATABASE_FILE) as store:
        at_rest = store.meta("enclave-epoch/E")
    assert at_rest is not None and decode(at_rest) == 3  # its copy stays sealed under the last key it held

    for node in record["nodes"]:
        audit = subprocess.run(
            [sys.executable, "-m", "sagachain", "audit", str(root / node["dir"]),
             "--enclave-state", str(root / "enclaves" / "E.sealed"), "--enclave-key", str(root / "enclaves" / "E.key")],
            capture_output=True, text=True, timeout=120,
        )
        assert audit.returncode == 0, f"{node['name']}: {audit.stdout}{audit.stderr}"


def test_a_peer_presenting_a_key_no_roster_records_is_refused_loudly(tmp_path: Path) -> None:
    """A spare node's key swapped behind the operators' backs: every peer that pinned the old key
    refuses the connection before signing anything, and says so in its log (MEM-5)."""
    root = tmp_path / "dn"
    write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=2, accounts=2, enclave_accounts=0, seed=5, spare_nodes=1), metrics=False), root)
    record = load_record(root)
    spare = node_named(record, "spare0")
    impostor = KeyPair(bytes(range(32)))
    (root / spare["dir"] / "node.key").write_text(impostor.seed.hex() + "\n")
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        public = [n for n in record["nodes"] if n["name"] != "spare0"]
        wait_for(lambda: all("refused peer" in node_log(root, n) for n in public), 30, "the peers to refuse the changed key")
    finally:
        stop_devnet(root)
    for node in public:
        line = next(line for line in node_log(root, node).splitlines() if "refused peer" in line)
        assert "ERROR" in line and "(MEM-5)" in line and impostor.public.hex()[:16] in line
