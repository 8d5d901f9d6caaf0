"""PNG plots of a run, drawn from its time series and its chain (matplotlib, no screen).

One figure per question a researcher asks of a run: how much got through
(throughput), how long it took (latency percentiles, queue age), how the
system was shaped (live shards, account transfers), what it cost (gas per
transaction by kind, how often the GAS-3 floor applied), who was paid
(coinbase by shard kind), and which accounts are used together (the affinity
graph that placement strategies try to exploit).
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, OpenEntry  # noqa: E402
from sagachain.core.ledger import ChainState  # noqa: E402


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        if row[key] is not None:
            xs.append(row["t_ms"] / 1000)
            ys.append(row[key])
    return xs, ys


def _lines(path: Path, rows: list[dict[str, Any]], keys: dict[str, str], title: str, ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for key, label in keys.items():
        xs, ys = _series(rows, key)
        ax.plot(xs, ys, marker=".", label=label)
    ax.set_title(title)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(keys) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def affinity_graph(blocks: list[Block]) -> nx.Graph:
    """Accounts as nodes, weighted edges between accounts that committed transactions touch together."""
    graph = nx.Graph()
    weights: Counter[tuple[bytes, bytes]] = Counter()
    for block in blocks:
        for entry in block.entries:
            if isinstance(entry, OpenEntry | EnclaveEntry | MixedEntry):
                accounts = sorted(set(entry.tx.account_ids()) | {entry.tx.gas_payer})
                graph.add_nodes_from(accounts)
                for pair in combinations(accounts, 2):
                    weights[pair] += 1
    for (a, b), weight in weights.items():
        graph.add_edge(a, b, weight=weight)
    return graph


def draw_affinity(path: Path, blocks: list[Block], chain: ChainState, seed: int) -> None:
    graph = affinity_graph(blocks)
    fig, ax = plt.subplots(figsize=(6, 6))
    if graph.number_of_nodes():
        layout = nx.spring_layout(graph, seed=seed, weight="weight")
        colors = ["tab:red" if chain.account_enclave(n) else "tab:blue" for n in graph.nodes]
        widths = [0.5 + graph.edges[e]["weight"] / 2 for e in graph.edges]
        names = {n: chain.accounts[n].name if n in chain.accounts else n.hex()[:6] for n in graph.nodes}
        nx.draw_networkx(graph, layout, ax=ax, node_color=colors, width=widths, labels=names, font_size=7, node_size=220)
    ax.set_title("Account affinity\nred: enclave accounts; edge width: transactions together", fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(out: Path, rows: list[dict[str, Any]], blocks: list[Block], chain: ChainState, seed: int) -> list[Path]:
    """Write every plot of the run into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        ("throughput.png", {"tx_per_s": "committed tx/s"}, "Throughput", "tx per virtual second"),
        ("latency.png", {"latency_p50_ms": "p50", "latency_p90_ms": "p90", "latency_p99_ms": "p99"}, "Commit latency", "ms"),
        ("queue.png", {"queue_age_ms": "mean age of queued tx"}, "Queue latency", "ms"),
        ("shards.png", {"public_shards": "public", "enclave_shards": "enclave"}, "Live shards", "shards"),
        ("transfers.png", {"transfers": "accounts acquired"}, "Cross-shard account transfers", "per sample period"),
        ("gas.png", {"gas_open": "open", "gas_enclave": "enclave", "gas_mixed": "mixed"}, "Gas per transaction (GAS-2, GAS-3)", "gas"),
        ("gas_floor.png", {"floor_applied": "enclave/mixed tx charged the floor"}, "GAS-3 floor applied", "per sample period"),
        ("coinbase.png", {"coinbase_public": "public shards", "coinbase_enclave": "enclave shards"}, "Coinbase by shard kind (MINT-3)", "coin"),
    ]
    written = []
    for name, keys, title, ylabel in plan:
        _lines(out / name, rows, keys, title, ylabel)
        written.append(out / name)
    draw_affinity(out / "affinity.png", blocks, chain, seed)
    written.append(out / "affinity.png")
    return written
