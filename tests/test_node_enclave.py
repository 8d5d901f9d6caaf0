"""Enclave operators on real node processes: a member without the state joins, a stranger is refused.

A member node started with no copy of the enclave's off-chain state (no
genesis bundle) derives the epoch key from the roster and receives it from another member over the encrypted
channel and then takes part in the enclave's blocks. A node of a public
shard that claims the enclave in its config is refused by the members, with
the reason and MEM-1, and never receives the key or the state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w
import tomllib
import trio

from devnet_kit import node_log, node_named, wait_for
from node.client import open_client
from node.config import CONFIG_FILE
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from sagachain.core.keys import KeyPair
from sagachain.core.tx import make_transaction

pytestmark = pytest.mark.slow

SPEC = DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=2, accounts=4, enclave_accounts=1, seed=11)


def test_a_member_without_state_joins_and_a_stranger_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(SPEC, metrics=False), root)
    record = load_record(root)
    joiner = node_named(record, "E/0-n1")
    stranger = node_named(record, "P0-n1")
    (root / joiner["dir"] / "enclave-E.genesis").unlink()
    config_path = root / stranger["dir"] / CONFIG_FILE
    config = tomllib.loads(config_path.read_text())
    config["enclaves"] = ["E"]
    config_path.write_text(tomli_w.dumps(config))
    try:
        procs = start_nodes(root, record)
        wait_ready(root, record, procs, timeout=60)
        wait_for(lambda: "joined enclave E" in node_log(root, joiner), 30, "the joiner to receive the enclave state")
        wait_for(lambda: "MEM-1" in node_log(root, stranger), 30, "the stranger's refusal")

        member_logs = "".join(node_log(root, n) for n in record["nodes"] if n["name"].startswith("E/"))
        assert "refused enclave state to P0-n1" in member_logs
        assert "not a MEMBER of enclave E" in node_log(root, stranger)
        assert not list((root / stranger["dir"]).glob("enclave-*"))

        accounts = {a["name"]: a for a in record["accounts"]}
        sender, vault = accounts["user0"], accounts["vault0"]
        tx = make_transaction(
            key=KeyPair(bytes.fromhex(sender["seed"])), sender=bytes.fromhex(sender["id"]), nonce=1, gas_limit=100_000,
            gas_payer=bytes.fromhex(sender["id"]), accounts={"v": bytes.fromhex(vault["id"])}, script="v.record(5)",
        )

        async def submit_and_wait() -> dict[str, Any]:
            async with open_client(joiner["address"]) as client:
                receipt = await client.submit(tx)
                assert receipt.accepted, receipt.reason
                with trio.fail_after(30):
                    while True:
                        answer = await client.receipt(tx.id)
                        if answer.status == "final":
                            return {"shard": answer.shard, "ok": answer.ok, "status": (await client.status()).data}
                        await trio.sleep(0.2)

        final = trio.run(submit_and_wait)
        assert final["shard"] == "E/0" and final["ok"]
        assert final["status"]["enclaves"]["E"]["current"]
    finally:
        stop_devnet(root)


def test_an_enclave_account_moves_between_the_enclaves_shards_with_its_state(tmp_path: Path) -> None:
    """A transaction on two vaults of different enclave shards: one vault is released, its
    off-chain state reaches the other shard's node as a sealed delta, and only then is it
    acquired (TX-3, L2L-1). Every node's chain audits clean, TX-6 re-execution included."""
    import subprocess
    import sys

    root = tmp_path / "dn"
    write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=2, nodes_per_shard=1, accounts=2, enclave_accounts=2, seed=13), metrics=False), root)
    record = load_record(root)
    accounts = {a["name"]: a for a in record["accounts"]}
    assert accounts["vault0"]["shard"] != accounts["vault1"]["shard"]
    sender = accounts["user0"]
    key, sender_id = KeyPair(bytes.fromhex(sender["seed"])), bytes.fromhex(sender["id"])
    txs = [
        make_transaction(key=key, sender=sender_id, nonce=n, gas_limit=100_000, gas_payer=sender_id,
                         accounts={"a": bytes.fromhex(accounts["vault0"]["id"]), "b": bytes.fromhex(accounts["vault1"]["id"])},
                         script=f"a.record({n})\nb.record({10 * n})")
        for n in (1, 2)
    ]
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)

        async def main() -> None:
            async with open_client(record["nodes"][0]["address"]) as client:
                for tx in txs:
                    assert (await client.submit(tx)).accepted
                with trio.fail_after(45):
                    while True:
                        receipts = [await client.receipt(tx.id) for tx in txs]
                        if all(r.status == "final" for r in receipts):
                            assert all(r.ok for r in receipts)
                            return
                        await trio.sleep(0.2)

        trio.run(main)
    finally:
        stop_devnet(root)
    for node in record["nodes"]:
        audit = subprocess.run(
            [sys.executable, "-m", "sagachain", "audit", str(root / node["dir"]),
             "--enclave-state", str(root / "enclaves" / "E.sealed"), "--enclave-key", str(root / "enclaves" / "E.key")],
            capture_output=True, text=True, timeout=120,
        )
        assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
        assert "re-executed" in audit.stdout
