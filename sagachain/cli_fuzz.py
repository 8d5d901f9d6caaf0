"""``sagachain fuzz``: deterministic simulation testing of the real consensus under random faults."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@click.command("fuzz")
@click.option("--seeds", default=24, show_default=True, help="How many seeds to run.")
@click.option("--start", default=0, show_default=True, help="The first seed; seeds are start, start+1, ...")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None, help="Write the sweep's summary as JSON to this file.")
@click.option("--keep", type=click.Path(path_type=Path), default=None, help="Write each failing seed's chain file to KEEP/SEED/chain.sgc.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fuzz(seeds: int, start: int, report_path: Path | None, keep: Path | None, quiet: bool) -> None:
    """Run SEEDS seeded random chains in the members committee model, with random faults.

    Each seed draws shards (committees of 4 or 7), maybe an enclave, a
    workload, a network with message loss, and per shard at most f faulty
    members: crashes, a split committee, a silent, equivocating or lying
    member. After every block it checks supply (MINT-5) and single ownership
    (L2L-3); at the end, safety (no two members decide different blocks at a
    height), liveness (every shard with work still decides blocks once the faults heal), no enclave
    plaintext in public bytes, and that the auditor reaches the members'
    ledger after every block. A failure prints its seed and the command that
    replays it; the exit status is 1.

    \b
    Example:
        sagachain fuzz --seeds 24
        sagachain fuzz --seeds 1 --start 17 --keep out/fuzz
    """
    from sagachain.sim.fuzz import run_seed, summary

    console = Console(stderr=True)
    results = []
    with Progress(TextColumn("[bold]fuzzing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=quiet) as progress:
        task = progress.add_task("seeds", total=seeds)
        for seed in range(start, start + seeds):
            result = run_seed(seed)
            results.append(result)
            if not result.ok:
                if keep is not None:
                    run_seed(seed, keep / str(seed))
                progress.console.print(f"[red]seed {seed} failed[/red]: " + "; ".join(result.failures))
                for line in result.faults:
                    progress.console.print(f"    fault {line}")
                progress.console.print(f"    replay: sagachain fuzz --seeds 1 --start {seed}")
            progress.advance(task)
    totals = summary(results)
    elapsed = progress.tasks[0].elapsed or 0.0
    totals["wall_seconds"] = round(elapsed, 1)
    table = Table(title=f"fuzz: seeds {start}..{start + seeds - 1}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    failed = totals["failed"]
    assert isinstance(failed, list)
    table.add_row("seeds passed / run", f"{seeds - len(failed)} / {seeds}")
    table.add_row("final blocks checked", str(totals["blocks"]))
    table.add_row("transactions committed", str(totals["transactions"]))
    table.add_row("consensus messages", str(totals["consensus_messages"]))
    table.add_row("heights decided per round", ", ".join(f"r{r}: {n}" for r, n in totals["decided_by_round"].items()))  # type: ignore[attr-defined]
    table.add_row("members caught equivocating", str(totals["members_caught_equivocating"]))
    table.add_row("wall time", f"{elapsed:.1f} s")
    Console().print(table)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(totals, indent=2) + "\n")
    if failed:
        raise SystemExit(1)
