"""One hash of a reader's public ledger state, to show that two readers agree.

Two readers of one chain (a node's chain view and the auditor, say) must end
every block with the same public state. Comparing whole states is slow and
their reprs differ in irrelevant ways (set order, caches), so each reader
digests what the rules read: objects and their owners, account placement and
transit, nonces and replay set, shard heads with the hash of each head, the
enclaves' status, halted shards and the coin tallies. Equal digests mean the
next block gets the same verdict from both.
"""

from __future__ import annotations

from sagachain.core.encoding import hash_value
from sagachain.core.ledger import ChainState


def state_digest(state: ChainState) -> bytes:
    """BLAKE3 of the canonical encoding of ``state``'s rule-relevant parts."""
    tallies = state.tallies
    heads = {shard: [height, state.blocks[(shard, height)].hash if height else state.genesis_hash]
             for shard, height in state.heads.items()}
    return hash_value({
        "objects": state.objects,
        "owner": state.owner,
        "transit": state.transit,
        "nonces": state.nonces,
        "seen": sorted(state.seen_tx),
        "heads": heads,
        "basis": state.basis,
        "acquired": sorted((r.shard, r.height, r.index) for r in state.acquired),
        "status": {e: [s.state, list(s.since) if s.since else None, s.reason] for e, s in state.status.items()},
        "halted": {shard: list(h) for shard, h in state.halted.items()},
        "tallies": [tallies.fees, tallies.tax, tallies.coinbase, tallies.payouts],
        "circulating": state.circulating,
    })
