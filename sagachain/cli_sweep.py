"""``sagachain sweep``: run a scenario over a grid of parameters and seeds, then compare."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sagachain.errors import SagaError
from sagachain.sweep import Spread, Sweep, SweepResult, dask_client, parse_grid, run_sweep, write_outputs

# The metrics of the console table, with their headers; the CSV, JSON and plots have them all.
# Headers are short so that a row fits an 80-column terminal.
TABLE_METRICS = (
    ("committed", "commits"),
    ("latency_p50", "p50 ms"),
    ("latency_p99", "p99 ms"),
    ("account_transfers", "acct transfers"),
    ("transfer_ms", "transfer ms"),
    ("coinbase", "coinbase"),
)


@click.command("sweep")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--grid", "grids", multiple=True, required=True, metavar="NAME=V1,V2,...", help="A parameter the scenario reads with s.param(NAME, default) and the values to try; repeatable, the sweep runs every combination.")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(min=1), help="Run every grid point with seeds 1..N.")
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), default=Path("out/sweep"), show_default=True, help="Directory for sweep.csv, sweep.json, plots/ and runs/.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786) instead of the local cores.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes of the local cluster  [default: one per core, at most one per run]")
@click.option("--metric", "paths", multiple=True, metavar="PATH", help="Also tabulate and plot the number at this dotted path of each run's results.json (metrics.membership.summary.sealed_bytes_mean); repeatable.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(scenario: Path, grids: tuple[str, ...], seeds: int, out: Path, scheduler: str | None, workers: int | None, paths: tuple[str, ...], quiet: bool) -> None:
    """Run SCENARIO for every combination of the --grid values, with seeds 1..N.

    Each run writes what `sagachain run` writes, without its plots, to
    OUT/runs/NAME=VALUE,.../seed-S/. Then the sweep writes OUT/sweep.csv (one row per
    run), OUT/sweep.json (the grid, every run, and per grid point the mean,
    min and max of each metric over the seeds) and OUT/plots/METRIC.png (the
    first grid parameter on the x axis, a line per combination of the others),
    and prints one table row per grid point. A run's chain is the same
    wherever it ran: locally or on a Dask cluster (see docs/SWEEPS.md).

    \b
    Example:
        sagachain sweep scenarios/quickstart.py --grid transfers=20,40,80 --seeds 3
        sagachain sweep scenarios/quickstart.py --grid transfers=20,40 \\
            --seeds 10 --scheduler tcp://10.0.0.5:8786 --out out/busy
    """
    console = Console()
    try:
        plan = Sweep.load(scenario, parse_grid(grids), seeds, paths)
        total = len(plan.runs)
        with dask_client(scheduler, workers, total) as client:
            if quiet:
                records = run_sweep(plan, out, client)
            else:
                columns = (TextColumn("[bold]sweeping"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn())
                with Progress(*columns, console=console, transient=True) as progress:
                    task = progress.add_task("sweep", total=total)
                    records = run_sweep(plan, out, client, lambda _: progress.advance(task))
        result = write_outputs(plan, records, out)
    except SagaError as exc:
        # On stderr and unwrapped, as `sagachain audit` does: messages name files and addresses.
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(2) from None
    console.print(points_table(plan, result))
    console.print(f"{total} runs; results in [bold]{out / 'sweep.csv'}[/bold], {out / 'sweep.json'} and {len(result.plots)} plots in {out / 'plots'}")


def points_table(plan: Sweep, result: SweepResult) -> Table:
    """One row per grid point: its settings, then each table metric's mean over the seeds and its range."""
    table = Table(title=f"{plan.scenario.name}: mean over {plan.seeds} seed(s), min \u2013 max below")
    for name in plan.grid:
        table.add_column(name, no_wrap=True)
    # --metric paths replace the standard columns: they are what was asked for, and rows stay narrow
    names = [path.rsplit(".", 1)[-1] for path in plan.paths]
    columns = [(p, n if names.count(n) == 1 else p) for p, n in zip(plan.paths, names, strict=True)] or list(TABLE_METRICS)
    for _, header in columns:
        table.add_column(header, justify="right")
    for point in result.stats:
        table.add_row(*point.settings.values(), *(_spread_text(point.spread[key]) for key, _ in columns))
    return table


def _spread_text(spread: Spread | None) -> str:
    """The mean, and under it the min-max range when the seeds disagree.

    Short lines, and spaces around the dash, so a narrow terminal wraps the
    range between its numbers instead of cutting a number off.
    """
    if spread is None:
        return "-"
    mean = f"{spread.mean:.0f}" if spread.mean.is_integer() else f"{spread.mean:.1f}"
    return mean if spread.low == spread.high else f"{mean}\n[dim]{spread.low} \u2013 {spread.high}[/dim]"

