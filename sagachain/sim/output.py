"""Writing a run's results: the chain file, sealed enclave states, figures, time series, plots.

``DIR/chain.sgc``            every final block of every shard (docs/FORMAT.md)
``DIR/enclaves/E.sealed``    enclave E's initial off-chain state and private code,
                             sealed with its key (MEM-4); with the chain, enough
                             to re-execute E's transactions (TX-6)
``DIR/enclaves/E.key``       that key, hex; the enclave's secret, not for publication
``DIR/results.json``         the run's figures (docs/RESULTS.md)
``DIR/timeseries.csv``       one row per sample period (docs/RESULTS.md)
``DIR/plots/*.png``          the plots of ``sagachain.sim.plots``
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from sagachain import __version__
from sagachain.core.chainfile import write_chain
from sagachain.core.encoding import hash_bytes
from sagachain.sim.checks import run_checks
from sagachain.sim.mail_report import check_mail, write_mail
from sagachain.sim.runner import SimResult
from shards.enclave_store import EnclaveStore

CHAIN_NAME = "chain.sgc"
RESULTS_NAME = "results.json"


def write_results(result: SimResult, out: Path, initial: dict[str, EnclaveStore], plots: bool = True) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    chain_path = out / CHAIN_NAME
    write_chain(chain_path, result.world.genesis, result.blocks)
    sealer = random.Random(f"seal/{result.world.scenario.seed}")
    enclave_dir = out / "enclaves"
    for enclave, store in sorted(initial.items()):
        enclave_dir.mkdir(exist_ok=True)
        key = result.world.enclave_keys[enclave]
        (enclave_dir / f"{enclave}.sealed").write_bytes(store.seal(key, sealer.randbytes(24)))
        key_path = enclave_dir / f"{enclave}.key"
        key_path.write_text(key.hex() + "\n")
        key_path.chmod(0o600)
    sc = result.world.scenario
    summary = summarize(result, chain_path)
    if result.mail is not None:
        summary["mail"] = write_mail(result.mail, out, result.end_time, plots)
    checks = run_checks(result.chain, chain_path, _dump(summary), [*initial.values(), *result.world.stores.values()], sc.crypto)
    summary["checks"] = checks.to_json()
    if result.mail is not None:
        summary["checks"]["mail_plaintext_found"] = check_mail(result.mail, out, chain_path, _dump(summary))
    (out / RESULTS_NAME).write_text(_dump(summary).decode())
    result.series.write_csv(out / "timeseries.csv")
    if plots:
        from sagachain.sim.plots import write_plots  # matplotlib is slow to import; only when drawing

        write_plots(out / "plots", result.series.rows, result.blocks, result.chain, result.world.scenario.seed)
    return summary


def _dump(summary: dict[str, Any]) -> bytes:
    return (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()


def summarize(result: SimResult, chain_path: Path) -> dict[str, Any]:
    sc = result.world.scenario
    committed = sum(result.metrics.committed.values())
    seconds = max(result.end_time, 1) / 1000
    return {
        "scenario": sc.name,
        "seed": sc.seed,
        "parameters": dict(sorted(sc.used.items())),
        "version": __version__,
        "chain": {"file": chain_path.name, "blake3": hash_bytes(chain_path.read_bytes()).hex(), "blocks": len(result.blocks)},
        "shards": {"public": len(sc.public), "enclave": sum(len(ids) for ids, _ in sc.enclaves.values())},
        "virtual_ms": result.end_time,
        "wall_seconds": round(result.wall_seconds, 3),
        "throughput_tx_per_virtual_s": round(committed / seconds, 2),
        "supply": {
            "genesis": result.chain.supply,
            "circulating": result.chain.circulating,
            "fees": result.chain.tallies.fees,
            "coinbase": result.chain.tallies.coinbase,
        },
        "metrics": result.metrics.to_json(),
        "network": {
            "model": repr(result.network.model),
            "messages": result.network.sent,
            "lost_attempts": result.network.lost,
            "gossip_hops": result.network.gossip_hops(),
        },
        "costs": repr(sc.cost_model),
        "placement": type(sc.placement_strategy).__name__,
        "crypto": sc.crypto,
    }
