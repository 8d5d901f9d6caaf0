"""A byzantine enclave proposer on real node processes: its honest peers re-execute and refuse (TX-6).

One of the four members of enclave shard E/0 is configured to lie (``lie``
in its node.toml, ``shards.lies``): each enclave proposal it makes claims a
forged output state, a wrong log hash, or a mixed payout of 50,000 where the
script pays 5 (balanced, so every public rule holds). Transactions go in one
at a time until the liar has proposed at least twice. The honest members must
vote nil naming TX-6, the next round's proposer must build each height, every
transaction must be final, and the chain every node stored must audit clean
with the enclave's state and key: no lie became final.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import tomllib
import trio

from devnet_kit import node_log, node_named
from node.client import open_client
from node.config import CONFIG_FILE
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from sagachain.core.keys import KeyPair
from sagachain.core.tx import make_transaction
from shards.lies import LIES

pytestmark = pytest.mark.slow

SPEC = DevnetSpec(shards=1, enclave_shards=1, nodes_per_shard=4, accounts=4, enclave_accounts=1, seed=13)
LIAR = "E/0-n0"
MAX_TXS = 16


def _make_liar(root: Path, record: dict[str, Any], kind: str) -> dict[str, Any]:
    liar = node_named(record, LIAR)
    path = root / liar["dir"] / CONFIG_FILE
    config = tomllib.loads(path.read_text())
    config["lie"] = kind
    path.write_text(tomli_w.dumps(config))
    return liar


@pytest.mark.parametrize("kind", sorted(LIES))
def test_no_lie_of_a_byzantine_enclave_proposer_becomes_final(kind: str, tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(SPEC, metrics=False), root)
    record = load_record(root)
    liar = _make_liar(root, record, kind)
    honest = [n for n in record["nodes"] if n["name"].startswith("E/") and n["name"] != LIAR]
    accounts = {a["name"]: a for a in record["accounts"]}
    payer, payee, vault = accounts["user0"], accounts["user1"], accounts["vault0"]
    key = KeyPair(bytes.fromhex(payer["seed"]))

    def tx(nonce: int) -> Any:
        script, uses = ("v.payout(a, b, 5)", {"v": vault, "a": payer, "b": payee}) if nonce % 2 or kind == "inflate_payout" else ("v.record(3)", {"v": vault})
        return make_transaction(
            key=key, sender=bytes.fromhex(payer["id"]), nonce=nonce, gas_limit=100_000, gas_payer=bytes.fromhex(payer["id"]),
            accounts={alias: bytes.fromhex(a["id"]) for alias, a in uses.items()}, script=script,
        )

    async def drive() -> list[tuple[str | None, bool | None]]:
        finals: list[tuple[str | None, bool | None]] = []
        async with open_client(honest[0]["address"]) as client:
            for nonce in range(1, MAX_TXS + 1):
                t = tx(nonce)
                receipt = await client.submit(t)
                assert receipt.accepted, receipt.reason
                with trio.fail_after(60):
                    while (answer := await client.receipt(t.id)).status != "final":
                        await trio.sleep(0.2)
                finals.append((answer.shard, answer.ok))
                if node_log(root, liar).count("LYING") >= 2:
                    break
        return finals

    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        finals = trio.run(drive)
    finally:
        stop_devnet(root)

    liar_log = node_log(root, liar)
    assert "configured to LIE" in liar_log
    assert liar_log.count("LYING") >= 2, f"the liar proposed {liar_log.count('LYING')} lies in {len(finals)} transactions"
    assert all(shard == "E/0" and ok for shard, ok in finals), finals  # the chain went on: every transaction final
    refusals = [line for n in honest for line in node_log(root, n).splitlines() if "votes nil on block" in line]
    assert refusals and all("TX-6" in line and LIAR in line for line in refusals), refusals[:3]
    for node in record["nodes"]:
        audit = subprocess.run(
            [sys.executable, "-m", "sagachain", "audit", str(root / node["dir"]),
             "--enclave-state", str(root / "enclaves" / "E.sealed"), "--enclave-key", str(root / "enclaves" / "E.key")],
            capture_output=True, text=True, timeout=120,
        )
        assert audit.returncode == 0, f"{node['name']}: {audit.stdout}{audit.stderr}"
        assert "re-executed (TX-6)" in audit.stdout
