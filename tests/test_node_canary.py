"""No enclave plaintext in any public byte a running network produces (MEM-4, TX-3).

A devnet with an enclave runs enclave and mixed transactions that leave a
canary value in the enclave's off-chain state; the enclave's private class
code is a second canary. Neither may appear in any node's database file
(members keep the state sealed; other nodes never receive it), log, process
output, Prometheus metrics, or in the event stream a client receives, nor in
an exported chain file.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio

from devnet_kit import public_bytes
from node.client import open_client
from node.config import DATABASE_FILE
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from node.storage import NodeStore
from sagachain.core.keys import KeyPair
from sagachain.core.tx import make_transaction

pytestmark = pytest.mark.slow

SPEC = DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=2, accounts=4, enclave_accounts=1, seed=21)
RECORDED = (2**63, 0x5A17_3C91)  # two amounts recorded into the vault; the scripts show each on chain (TX-3)
CANARY_TOTAL = sum(RECORDED)  # their sum exists only in the vault's off-chain state: the state canary
CODE_CANARY = b"self.paid = self.paid + amount"  # a line of the private class


def _tx(account: dict[str, Any], nonce: int, script: str, uses: dict[str, dict[str, Any]]) -> Any:
    return make_transaction(
        key=KeyPair(bytes.fromhex(account["seed"])), sender=bytes.fromhex(account["id"]), nonce=nonce, gas_limit=100_000,
        gas_payer=bytes.fromhex(account["id"]), accounts={a: bytes.fromhex(u["id"]) for a, u in uses.items()}, script=script,
    )


def test_no_enclave_state_or_private_code_in_any_public_byte(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(SPEC), root)
    record = load_record(root)
    accounts = {a["name"]: a for a in record["accounts"]}
    user0, user1, vault = accounts["user0"], accounts["user1"], accounts["vault0"]
    state_canaries = (msgpack.packb(CANARY_TOTAL), str(CANARY_TOTAL).encode())
    events: list[bytes] = []
    metrics: list[bytes] = []
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        txs = [
            _tx(user0, 1, f"v.record({RECORDED[0]})", {"v": vault}),
            _tx(user1, 1, "v.payout(src, dst, 3)", {"v": vault, "src": user1, "dst": user0}),
            _tx(user0, 2, f"v.record({RECORDED[1]})", {"v": vault}),
            _tx(user0, 3, "a.pay(b, 5)", {"a": user0, "b": user1}),
        ]

        async def main() -> None:
            address = record["nodes"][0]["address"]
            async with open_client(address) as client, client.subscribe(["blocks", "transfers", "roster"]) as stream:
                for tx in txs:
                    assert (await client.submit(tx)).accepted
                wanted = {tx.id for tx in txs}
                with trio.fail_after(45):
                    async for event in stream:
                        events.append(msgpack.packb(event.data, use_bin_type=True))
                        wanted -= set(event.data.get("txs", ()))
                        if not wanted:
                            break
                for tx in txs:
                    receipt = await client.receipt(tx.id)
                    assert receipt.status == "final" and receipt.ok, (tx.script, receipt)

        trio.run(main)
        for node in record["nodes"]:
            if node.get("metrics"):
                metrics.append(urllib.request.urlopen(f"http://{node['metrics']}/metrics", timeout=5).read())
    finally:
        stop_devnet(root)

    assert metrics, "the devnet serves metrics"
    seen = {f"event {i}": data for i, data in enumerate(events)}
    public = public_bytes(root, record, tmp_path, {**seen, **{f"metrics {i}": data for i, data in enumerate(metrics)}})
    for node in record["nodes"]:
        if "E" in node["enclaves"]:
            with NodeStore.open(root / node["dir"] / DATABASE_FILE) as store:
                assert store.enclave_state("E") is not None  # the members do keep the state: sealed

    leaks = [name for name, data in public.items() if any(c in data for c in (*state_canaries, CODE_CANARY))]
    assert not leaks, f"enclave plaintext found in {leaks}"

    # the control: the canaries are real, and the members do hold them (sealed)
    from shards.enclave_store import EnclaveStore

    from node.enclave_keys import EnclaveKeys
    from sagachain.core.encoding import decode
    from sagachain.core.ledger import ChainState
    from sagachain.core.objects import node_id_for

    member = next(n for n in record["nodes"] if "E" in n["enclaves"])
    seed = bytes.fromhex((root / member["dir"] / "node.key").read_text().strip())
    with NodeStore.open(root / member["dir"] / DATABASE_FILE) as store:
        sealed = store.enclave_state("E")
        epoch = store.meta("enclave-epoch/E")
        chain = ChainState(store.genesis())
        for stored in store.blocks():
            chain.apply_block(stored.block)
    assert sealed is not None and epoch is not None
    keys = EnclaveKeys("E", node_id_for(bytes.fromhex(member["node_key"])), [seed])
    keys.follow(chain)
    state = EnclaveStore.unseal(keys.keys[decode(epoch)], sealed.sealed)
    assert state_canaries[0] in state.to_bytes() and CODE_CANARY in state.to_bytes()
