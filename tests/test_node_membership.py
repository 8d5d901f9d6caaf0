"""An enclave's membership on real node processes (MEM-1..MEM-3), driven by the operator commands.

A spare node (its key unknown to the genesis) applies to enclave E asking for
a seat on E/0, and the owner's account approves it. The node then derives the
new epoch's key from the roster alone, receives the current state from a
member, takes its seat and signs enclave blocks. After the owner removes it,
the members refuse it the state (MEM-1), it holds no key of the new epoch
(MEM-3), the committee goes on without it, and every node's chain audits
clean against the roster at each height.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from node.client import open_client
from node.config import DATABASE_FILE
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from node.enclave_keys import EnclaveKeys
from node.storage import NodeStore
from sagachain.core.encoding import decode
from sagachain.core.keys import KeyPair
from sagachain.core.objects import node_id_for
from sagachain.core.tx import make_transaction

pytestmark = pytest.mark.slow

SPEC = DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=2, accounts=3, enclave_accounts=1, seed=17, spare_nodes=1)


def _node(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in record["nodes"] if n["name"] == name)


def _log(root: Path, node: dict[str, Any]) -> str:
    return (root / node["dir"] / "node.log").read_text(errors="replace")


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


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


def _keys(directory: Path, node: dict[str, Any]) -> EnclaveKeys:
    """The epoch keys a node derives from its own chain and seed."""
    seed = bytes.fromhex((directory / "node.key").read_text().strip())
    with NodeStore.open(directory / DATABASE_FILE) as store:
        chain = store.replay()
    keys = EnclaveKeys("E", node_id_for(bytes.fromhex(node["node_key"])), [seed])
    keys.follow(chain)
    return keys


def test_a_node_applies_is_approved_serves_and_after_removal_is_refused_and_holds_no_new_key(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(SPEC, metrics=False), root)
    record = load_record(root)
    spare, member = _node(record, "spare0"), _node(record, "E/0-n0")
    spare_id = node_id_for(bytes.fromhex(spare["node_key"]))
    accounts = {a["name"]: a for a in record["accounts"]}
    user, vault = accounts["user0"], accounts["vault0"]
    user_key, user_id = KeyPair(bytes.fromhex(user["seed"])), bytes.fromhex(user["id"])

    def record_tx(nonce: int) -> Any:
        return make_transaction(key=user_key, sender=user_id, nonce=nonce, gas_limit=100_000, gas_payer=user_id,
                                accounts={"v": bytes.fromhex(vault["id"])}, script=f"v.record({nonce})")

    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        assert "holds the key" not in _log(root, spare)

        _enclave(root, "apply", "--from", "user2", "--node-dir", str(root / spare["dir"]), "--seat", "E/0")
        _enclave(root, "approve", "spare0", "--from", "E.operator")
        _wait_for(lambda: "holds the key of epoch 2" in _log(root, spare), 30, "the new member to derive the epoch key")
        _wait_for(lambda: "joined enclave E" in _log(root, spare), 30, "the new member to receive the state")
        # the committee of an enclave block is fixed by its parent (``ChainState.committee_at``): the
        # first E/0 block after the approval still has the old committee and its successors the new one
        assert spare_id not in _signers(_final(spare["address"], record_tx(1)))
        _wait_for(lambda: "the roster seats this node" in _log(root, spare), 30, "the new member to take its seat")
        block = _final(spare["address"], record_tx(2))
        assert block.shard == "E/0" and spare_id in _signers(block)  # it signs: a committee of 3 needs all 3

        _enclave(root, "remove", "spare0", "--from", "E.operator")
        _wait_for(lambda: "no key for epoch 3" in _log(root, spare), 30, "the removed node to notice it holds no new key")
        assert spare_id in _signers(_final(member["address"], record_tx(3)))  # seated until a block sees the removal
        _wait_for(lambda: "seat ended" in _log(root, spare), 30, "the removed node to leave its seat")
        assert spare_id not in _signers(_final(member["address"], record_tx(4)))
        _wait_for(lambda: "not a MEMBER of enclave E" in _log(root, spare), 40, "the members to refuse the removed node the state")
        assert "refused enclave state to" in "".join(_log(root, n) for n in record["nodes"] if n["name"].startswith("E/"))
    finally:
        stop_devnet(root)

    spare_keys, member_keys = _keys(root / spare["dir"], spare), _keys(root / member["dir"], member)
    assert sorted(spare_keys.keys) == [2] and spare_keys.epoch == 3  # only the epoch it was a member in
    assert sorted(member_keys.keys) == [1, 2, 3]
    assert member_keys.keys[3] not in spare_keys.keys.values()
    with NodeStore.open(root / spare["dir"] / DATABASE_FILE) as store:
        at_rest = store.meta("enclave-epoch/E")
    assert at_rest is not None and decode(at_rest) == 2  # its copy stays sealed under the last key it held

    for node in record["nodes"]:
        audit = subprocess.run(
            [sys.executable, "-m", "sagachain", "audit", str(root / node["dir"]),
             "--enclave-state", str(root / "enclaves" / "E.sealed"), "--enclave-key", str(root / "enclaves" / "E.key")],
            capture_output=True, text=True, timeout=120,
        )
        assert audit.returncode == 0, f"{node['name']}: {audit.stdout}{audit.stderr}"
