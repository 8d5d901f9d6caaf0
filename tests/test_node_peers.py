"""A peer that signs badly is disconnected, and one that keeps doing it is backed off (SH-1).

Two real node processes form the committee of one shard. The second is
stopped and its key used to send the first consensus messages whose
signatures do not verify: each is met by a closed connection and a log line
naming SH-1; the third puts the key in backoff, so its next handshake is
refused, while clients are still served.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.channel import connect
from node.client import open_client
from node.config import load_key
from node.devnet import DevnetSpec, load_record, plan_devnet, start_nodes, stop_devnet, wait_ready, write_devnet
from node.messages import Consensus
from node.wire import PeerError, ProtocolError
from sagachain.core.objects import node_id_for
from shards.committee import Prevote

pytestmark = pytest.mark.slow


def test_bad_consensus_signatures_disconnect_then_back_off_the_key(tmp_path: Path) -> None:
    root = tmp_path / "dn"
    write_devnet(plan_devnet(DevnetSpec(shards=1, enclave_shards=0, nodes_per_shard=2, accounts=2, enclave_accounts=0, seed=4)), root)
    record = load_record(root)
    first, second = record["nodes"]
    record["nodes"] = [first]  # only the first runs; the test speaks with the second's key
    try:
        wait_ready(root, record, start_nodes(root, record), timeout=60)
        impostor = load_key(root / second["dir"])
        host, port = first["address"].rsplit(":", 1)

        async def main() -> None:
            for attempt in range(3):
                channel = await connect(await trio.open_tcp_stream(host, int(port)), impostor)
                vote = Prevote(shard="P0", height=1, round=attempt, block_hash=b"\x01" * 32,
                               signer=node_id_for(impostor.public), signature=b"\x00" * 64)
                await channel.send(Consensus(body=vote))
                with trio.fail_after(10), pytest.raises(ProtocolError):
                    while True:
                        await channel.receive()
            with pytest.raises(PeerError, match="backed off"):
                await connect(await trio.open_tcp_stream(host, int(port)), impostor)
            async with open_client(first["address"]) as client:
                assert (await client.status()).data["name"] == "P0-n0"

        trio.run(main)
        log = (root / first["dir"] / "node.log").read_text()
        assert "prevote for P0 height 1: bad signature (SH-1)" in log
        assert "backing off" in log
    finally:
        record["nodes"] = [first, second]
        stop_devnet(root, record=record)
