"""Speed of the foundation: simulation, audit, the SagaPython interpreter, encoding.

Run ``python benchmarks/bench_core.py`` (add ``--out FILE`` to choose where the
figures go; default ``benchmarks/results.json``). Each figure is the best of
``--repeat`` runs, in wall-clock time on this machine, so compare figures from
one machine only. The README quotes the latest results.

What is measured:

- ``simulate_quickstart``: ``scenarios/quickstart.py`` with seed 1, end to end
  (world, simulation, rule checks of every block by the validators);
- ``simulate_load``: a heavier open workload (4 public shards, 40 accounts,
  1,000 transfers) to see how the simulator scales with transactions;
- ``audit``: reading and auditing the quickstart chain, with and without
  re-executing the enclave's transactions (TX-6);
- ``interpreter``: gas units per second of a loop-heavy method;
- ``encode_hash``: canonical encoding plus BLAKE3 of a block's header.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def best_of(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def load_scenario(s: Any) -> None:
    s.configure(duration=60_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(4, nodes=4)
    for i in range(40):
        s.account(f"user{i}", balance=1_000_000)
    s.random_transfers(1_000, start=100, end=50_000)


def simulate(scenario: Any) -> Any:
    from sagachain.sim.runner import Simulation
    from sagachain.world.build import build_world
    from shards.tools import tools_for

    world = build_world(scenario)
    initial = {e: s.copy() for e, s in world.stores.items()}
    return Simulation(world, tools_for(scenario.crypto), None).run(), initial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="Example: python benchmarks/bench_core.py --repeat 3")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from sagachain.audit.auditor import audit_chain
    from sagachain.core.chainfile import read_chain, write_chain
    from sagachain.core.encoding import hash_value
    from sagachain.core.wire import to_wire
    from sagachain.sim import Scenario
    from sagachain.sim.load import load_scenario as load_file
    from shards.tools import default_tools

    figures: dict[str, Any] = {}
    quickstart = ROOT / "scenarios" / "quickstart.py"

    seconds, (result, initial) = best_of(args.repeat, lambda: simulate(load_file(quickstart, 1)))
    txs = sum(result.metrics.committed.values())
    figures["simulate_quickstart"] = {"seconds": round(seconds, 3), "blocks": len(result.blocks), "txs": txs, "txs_per_s": round(txs / seconds, 1)}

    def heavy() -> Any:
        scenario = Scenario(1, name="load")
        load_scenario(scenario)
        return simulate(scenario)

    seconds, (load, _) = best_of(args.repeat, heavy)
    load_txs = sum(load.metrics.committed.values())
    figures["simulate_load"] = {
        "seconds": round(seconds, 3),
        "blocks": len(load.blocks),
        "submitted": load.metrics.submitted,
        "txs": load_txs,
        "txs_per_s": round(load_txs / seconds, 1),
    }

    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.sgc"
        write_chain(path, result.world.genesis, result.blocks)
        size = path.stat().st_size
        tools = default_tools()
        public, _ = best_of(args.repeat, lambda: audit_chain(read_chain(path), tools))
        full, report = best_of(args.repeat, lambda: audit_chain(read_chain(path), tools, enclaves={e: s.copy() for e, s in initial.items()}))
        assert report.ok, "the quickstart chain must audit clean"
    figures["audit"] = {
        "chain_bytes": size,
        "blocks": len(result.blocks),
        "public_seconds": round(public, 3),
        "public_blocks_per_s": round(len(result.blocks) / public, 1),
        "with_tx6_seconds": round(full, 3),
        "with_tx6_blocks_per_s": round(len(result.blocks) / full, 1),
    }

    gas, seconds = interpreter_speed(args.repeat)
    figures["interpreter"] = {"gas_units": gas, "seconds": round(seconds, 4), "gas_per_s": round(gas / seconds)}

    header = to_wire(result.blocks[-1].header)
    count = 20_000
    seconds, _ = best_of(args.repeat, lambda: [hash_value(["block", header]) for _ in range(count)])
    figures["encode_hash"] = {"headers": count, "seconds": round(seconds, 3), "per_s": round(count / seconds)}

    figures["machine"] = {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()}
    args.out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    show(figures)
    Console().print(f"figures written to {args.out}")


def interpreter_speed(repeat: int) -> tuple[int, float]:
    from runtimes import ExecutionContext, builtin_account_class, compile_class, execute_transaction, public_runtime
    from sagachain.core.keys import KeyPair
    from sagachain.core.objects import ACCOUNT_CLASS_ID, StoredObject, account_id_for
    from sagachain.core.tx import make_transaction

    code = (
        "class Loop(ClassAccount):\n"
        "    ALLOW = {'spin': 'any'}\n"
        "    def spin(self, n):\n"
        "        total = 0\n"
        "        for i in range(n):\n"
        "            total = total + i * i % 7\n"
        "        self.total = total\n"
    )
    rt = public_runtime()
    base = builtin_account_class()
    loop = compile_class(name="Loop", code=code, base=ACCOUNT_CLASS_ID, runtime=rt.id, private=False, enclave=None, owner=None)
    me = account_id_for("bench")
    ctx = ExecutionContext(
        shard="P0", shard_enclave=None, node_enclaves=frozenset(), owns=lambda a: True, account_enclave=lambda a: None,
        classes={base.id: base, loop.id: loop}, runtimes={rt.id: rt},
    )
    tx = make_transaction(key=KeyPair(b"b" * 32), sender=me, nonce=1, gas_limit=10_000_000, gas_payer=me, accounts={"a": me}, script="a.spin(1000)")
    objects = {me: StoredObject(class_id=loop.id, owner=me, fields={"balance": 0})}
    seconds, result = best_of(repeat, lambda: execute_transaction(tx, ctx, objects))
    assert result.ok, result.error
    return result.gas_used, seconds


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


def show(figures: dict[str, Any]) -> None:
    table = Table(title="benchmarks (best of repeats, wall clock)")
    table.add_column("what")
    table.add_column("figure", justify="right")
    q, l, a, i, e = (figures[k] for k in ("simulate_quickstart", "simulate_load", "audit", "interpreter", "encode_hash"))
    table.add_row("quickstart simulation", f"{q['seconds']} s, {q['blocks']} blocks, {q['txs']} txs")
    table.add_row("load simulation (4 shards, 1,000 transfers)", f"{l['seconds']} s, {l['txs']} of {l['submitted']} committed, {l['txs_per_s']} txs/s")
    table.add_row("audit, public rules", f"{a['public_blocks_per_s']} blocks/s")
    table.add_row("audit, with TX-6 re-execution", f"{a['with_tx6_blocks_per_s']} blocks/s")
    table.add_row("interpreter", f"{i['gas_per_s']:,} gas/s")
    table.add_row("encode + BLAKE3 of a block header", f"{e['per_s']:,} /s")
    Console().print(table)


if __name__ == "__main__":
    main()
