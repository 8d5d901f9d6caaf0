"""What a node exposes to Prometheus: heights, queues, peers, blocks produced and refused.

A registry per node (not the library's global one) so that tests can run
several nodes in one process. The HTTP endpoint is prometheus-client's own
server on a daemon thread: it only reads these counters, never the node's
state, so it needs no coordination with the trio loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server


@dataclass
class NodeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.height = Gauge("sagachain_shard_height", "Height of each shard's last final block applied here", ["shard"], registry=r)
        self.queue = Gauge("sagachain_queue_length", "Transactions queued on a shard this node serves", ["shard"], registry=r)
        self.peers = Gauge("sagachain_peers_connected", "Node links open now, incoming and outgoing", registry=r)
        self.pending = Gauge("sagachain_pending_transactions", "Transactions accepted here and not yet final", registry=r)
        self.produced = Counter("sagachain_blocks_produced", "Final blocks this node proposed", ["shard"], registry=r)
        self.applied = Counter("sagachain_blocks_applied", "Final blocks applied to this node's chain", ["shard"], registry=r)
        self.rejected_blocks = Counter("sagachain_blocks_rejected", "Blocks refused, by rule id", ["shard", "rule"], registry=r)
        self.rejected_txs = Counter("sagachain_txs_rejected", "Transactions refused, by rule id", ["rule"], registry=r)
        self.committed = Counter("sagachain_txs_committed", "Transactions in final blocks applied here, by kind", ["kind"], registry=r)
        self.dropped = Counter("sagachain_frames_dropped", "Connections dropped for bad input, by error code", ["code"], registry=r)
        self.backoffs = Counter("sagachain_peer_backoffs", "Remote hosts or keys put in backoff for repeated bad input", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0: any free port); return the port bound."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])
