"""``sagachain run``: run a scenario file and write its chain and results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sagachain.errors import InputError, SagaError


@click.command("run")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Seed of the run's only random source.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("out"), show_default=True, help="Directory for chain.sgc, enclaves/, results.json, timeseries.csv, plots/.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a parameter the scenario reads with s.param(NAME, default); repeatable.")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Draw OUT/plots/*.png (matplotlib).")
@click.option("--committees", type=click.Choice(["modelled", "members"]), default=None,
              help="Committee model, overriding the scenario's: a quorum count (modelled), or every member running the node's consensus machine (members).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(scenario: Path, seed: int, out: Path, settings: tuple[str, ...], plots: bool, committees: str | None, quiet: bool) -> None:
    """Run SCENARIO (a Python file with a build(s) function) in the simulator.

    Writes OUT/chain.sgc (every shard's blocks), OUT/enclaves/NAME.sealed and
    NAME.key (each enclave's initial off-chain state and its key, for
    re-execution by the auditor), OUT/results.json, OUT/timeseries.csv and
    OUT/plots/*.png, then prints a summary.
    The same scenario and seed always give the same chain file.

    \b
    Example:
        sagachain run scenarios/quickstart.py --seed 1 --out out/quickstart
        sagachain run scenarios/quickstart.py --set transfers=80 --out out/busy
        sagachain run scenarios/partition.py --committees members --out out/members
    """
    from sagachain.sim.load import load_scenario, run_scenario
    from sagachain.sim.membership_report import membership_table

    console = Console()
    try:
        given = parse_settings(settings)
        duration = load_scenario(scenario, seed, given, committees).timing.duration
        if quiet:
            _, summary = run_scenario(scenario, seed, out, settings=given, plots=plots, committees=committees)
        else:
            with Progress(TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.completed:>8.0f}/{task.total:.0f} virtual ms"), TimeElapsedColumn(), console=console, transient=True) as progress:
                task = progress.add_task("run", total=duration)
                _, summary = run_scenario(scenario, seed, out, lambda now: progress.update(task, completed=min(now, duration)), given, plots, committees)
    except SagaError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
    console.print(summary_table(summary))
    if "mail" in summary:
        from sagachain.sim.mail_report import mail_table

        console.print(mail_table(summary))
    churn = membership_table(summary["metrics"].get("membership", {}))
    if churn is not None:
        console.print(churn)
    console.print(f"chain written to [bold]{out / summary['chain']['file']}[/bold]  (blake3 {summary['chain']['blake3'][:16]}...)")


def _ok(flag: bool) -> str:
    return "holds" if flag else "BROKEN"


def _transfer_split(parts: dict[str, dict[str, Any]]) -> str:
    if not parts["total"]["count"]:
        return "no transfers"
    return " + ".join(f"{parts[p]['mean']:.0f}" for p in ("release", "gossip", "acquire")) + f" = {parts['total']['mean']:.0f}"


def parse_settings(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["load=5", "zipf=1.2"]`` as a dict; a pair without ``=`` is an input error."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InputError(f"--set {pair!r}: write NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def summary_table(summary: dict[str, Any]) -> Table:
    m = summary["metrics"]
    table = Table(title=f"{summary['scenario']} (seed {summary['seed']})", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("shards (public / enclave)", f"{summary['shards']['public']} / {summary['shards']['enclave']}"),
        ("placement", summary["placement"]),
        ("virtual time", f"{summary['virtual_ms'] / 1000:.1f} s"),
        ("blocks (ignored)", f"{summary['chain']['blocks']} ({m['ignored_blocks']})"),
        ("transactions submitted", str(m["submitted"])),
        ("committed open / enclave / mixed", " / ".join(str(m["committed"].get(k, 0)) for k in ("open", "enclave", "mixed"))),
        ("commit latency p50 / p99", f"{m['latency_ms']['p50']} / {m['latency_ms']['p99']} ms"),
        ("account transfers (release / acquire)", f"{m['transfers']['releases']} / {m['transfers']['acquires']}"),
        ("transfer mean ms: release + gossip + acquire", _transfer_split(m["transfer_ms"])),
        ("queue wait p50 / p99", f"{m['queue_wait_ms']['p50']} / {m['queue_wait_ms']['p99']} ms"),
        ("coinbase public / enclave", f"{m['coinbase'].get('public', 0)} / {m['coinbase'].get('enclave', 0)}"),
        ("enclave txs charged the GAS-3 floor", str(m["gas_floor_applied"])),
        ("supply genesis = circulating + fees", f"{summary['supply']['genesis']} = {summary['supply']['circulating']} + {summary['supply']['fees']}"),
        ("wall time", f"{summary['wall_seconds']:.2f} s"),
    ]
    checks = summary["checks"]
    rows.append(("invariants: supply / single ownership", f"{_ok(checks['supply'])} / {_ok(checks['single_ownership'])}"))
    rows.append(("enclave plaintext found in public data", str(checks["plaintext_found"])))
    audit = checks["audit"]
    rows.append(("audit of the chain", audit["verdict"] + "".join(f", {rule} x{n}" for rule, n in audit["violations"].items())))
    for rule, count in m["rejected_transactions"].items():
        rows.append((f"refused by {rule}", str(count)))
    for enclave, where in m["terminated"].items():
        rows.append((f"enclave {enclave} terminated at", where))
    for enclave, where in m["broken_away"].items():
        rows.append((f"enclave {enclave} broke away at", where))
    for name, value in rows:
        table.add_row(name, value)
    return table
