"""``sagachain devnet``: a local multi-process devnet (up, down, load, status); see docs/DEVNET.md."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sagachain.errors import InputError, SagaError

DIR_OPTION = click.option("--dir", "root", type=click.Path(path_type=Path, file_okay=False), default=Path("devnet"), show_default=True, help="The devnet's directory.")


def _fail(exc: SagaError) -> None:
    Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
    raise SystemExit(2)


@click.group("devnet")
def devnet() -> None:
    """Run a local devnet: every committee member of a small genesis as its own node process.

    \b
    Example:
        sagachain devnet up --shards 1 --enclave-shards 1 --nodes-per-shard 4
        sagachain devnet load --rate 20 --duration 10
        sagachain devnet status
        sagachain devnet down
    """


@devnet.command("up")
@DIR_OPTION
@click.option("--shards", default=1, show_default=True, type=int, help="Public shards P0, P1, ...")
@click.option("--enclave-shards", default=1, show_default=True, type=int, help="Shards E/0, E/1, ... of the one enclave E (0: no enclave).")
@click.option("--nodes-per-shard", default=4, show_default=True, type=int, help="Committee size of every shard; each member is one process.")
@click.option("--accounts", default=8, show_default=True, type=int, help="Funded public accounts user0, user1, ...")
@click.option("--enclave-accounts", default=2, show_default=True, type=int, help="Vaults vault0, ... of enclave E (class Treasury).")
@click.option("--identities", default=0, show_default=True, type=int, help="Identities id0, ... each with devices idN.dev0, idN.dev1 and a burn-on-read mailbox (`sagachain mailbox`).")
@click.option("--spare-nodes", default=0, show_default=True, type=int, help="Nodes spare0, ... on no committee, following enclave E: candidates for `sagachain enclave apply`.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the genesis and every key.")
@click.option("--base-port", type=int, default=None, help="Listen on BASE+i and serve metrics on BASE+N+i (N nodes); default: free ports.")
@click.option("--metrics/--no-metrics", default=True, show_default=True, help="Give each node a Prometheus metrics address.")
@click.option("--fresh", is_flag=True, help="Delete a stopped devnet in --dir first (refused while it runs).")
@click.option("--timeout", default=60.0, show_default=True, type=float, help="Seconds to wait for every node to be ready.")
def up(root: Path, shards: int, enclave_shards: int, nodes_per_shard: int, accounts: int, enclave_accounts: int, identities: int,
       spare_nodes: int, seed: int, base_port: int | None, metrics: bool, fresh: bool, timeout: float) -> None:
    """Make a genesis, one data directory per committee member, and start every node.

    Writes DIR/genesis.sgc, DIR/devnet.json (nodes, addresses, keys, pids,
    accounts with their seeds), DIR/enclaves/E.sealed and E.key (for the
    audit), and DIR/nodes/NAME/ per node; starts each with `python -m
    sagachain node start` and waits until all have written node.ready.
    Refuses a DIR that holds a running devnet.

    \b
    Example:
        sagachain devnet up --dir devnet --shards 1 --enclave-shards 1 --nodes-per-shard 4
        sagachain devnet up --dir devnet --fresh --shards 2 --enclave-shards 0 --base-port 7100
        sagachain devnet up --dir devnet --fresh --enclave-shards 0 --nodes-per-shard 2 --identities 2
    """
    from node import devnet as dn

    console = Console()
    spec = dn.DevnetSpec(shards, enclave_shards, nodes_per_shard, accounts, enclave_accounts, seed, identities=identities, spare_nodes=spare_nodes)
    try:
        with Progress(TextColumn("[bold]starting nodes"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("", total=None)

            def planned(record: dict[str, Any]) -> None:
                progress.update(task, total=len(record["nodes"]))

            def ready(name: str) -> None:
                progress.update(task, advance=1, description=f"{name} ready")

            record = dn.up(root, spec, base_port, metrics, fresh, timeout, ready, planned)
    except SagaError as exc:
        _fail(exc)
    console.print(nodes_table(record, f"devnet in {root}: chain {record['chain_id']}"))
    console.print(f"{len(record['nodes'])} nodes running; try [bold]sagachain devnet load --dir {root} --rate 20 --duration 10[/bold], "
                  f"stop with [bold]sagachain devnet down --dir {root}[/bold]")


def nodes_table(record: dict[str, Any], title: str, states: dict[str, tuple[str, str]] | None = None) -> Table:
    """The nodes of ``record``; with ``states`` (name -> (state, heights)) two more columns."""
    table = Table(title=title)
    for column in ("node", "shard", "enclave", "address", "metrics", "pid", "node key"):
        table.add_column(column)
    if states is not None:
        table.add_column("state")
        table.add_column("heights")
    for node in record["nodes"]:
        row = [node["name"], ", ".join(node["shards"]), ", ".join(node["enclaves"]) or "-", node["address"],
               node["metrics"] or "-", str(node["pid"] or "-"), node["node_key"][:16] + "..."]
        if states is not None:
            row += list(states.get(node["name"], ("-", "-")))
        table.add_row(*row)
    return table


@devnet.command("down")
@DIR_OPTION
@click.option("--timeout", default=10.0, show_default=True, type=float, help="Seconds to wait after SIGTERM before SIGKILL.")
def down(root: Path, timeout: float) -> None:
    """Stop every node of the devnet: SIGTERM, then SIGKILL after --timeout. Safe to repeat.

    The data directories stay; `sagachain audit DIR/nodes/NAME` audits a node's chain.

    \b
    Example:
        sagachain devnet down --dir devnet
    """
    from node.devnet import stop_devnet

    console = Console()
    try:
        with console.status("stopping nodes"):
            results = stop_devnet(root, timeout)
    except SagaError as exc:
        _fail(exc)
    table = Table(title=f"devnet in {root}")
    table.add_column("node")
    table.add_column("pid")
    table.add_column("stopped")
    for item in results:
        table.add_row(item.name, str(item.pid or "-"), item.how)
    console.print(table)
    counts = {how: sum(1 for r in results if r.how == how) for how in ("terminated", "killed", "not running")}
    console.print(f"{counts['terminated']} terminated, {counts['killed']} killed (did not stop within {timeout:g} s), "
                  f"{counts['not running']} were not running")


@devnet.command("status")
@DIR_OPTION
def status(root: Path) -> None:
    """Which nodes of the devnet run, and each one's shard heights (asked over the client API).

    \b
    Example:
        sagachain devnet status --dir devnet
    """
    import trio

    from node.devnet import load_record, pid_alive, read_ready

    console = Console()
    try:
        record = load_record(root)
    except SagaError as exc:
        _fail(exc)
    states: dict[str, tuple[str, str]] = {}
    for node in record["nodes"]:
        directory = root / node["dir"]
        if not pid_alive(node.get("pid"), directory):
            states[node["name"]] = ("stopped", "-")
        elif read_ready(directory) is None:
            states[node["name"]] = ("starting", "-")
        else:
            states[node["name"]] = ("running", "?")
    heights = trio.run(_heights, [n for n in record["nodes"] if states[n["name"]][0] == "running"])
    for name, text in heights.items():
        states[name] = ("running" if not text.startswith("unreachable") else "not answering", text)
    console.print(nodes_table(record, f"devnet in {root}", states))


async def _heights(nodes: list[dict[str, Any]]) -> dict[str, str]:
    """Each node's status heights as text, asked of all nodes at once (a hung node costs 3 s, not 3 s each)."""
    import trio

    from node.client import open_client

    out: dict[str, str] = {}

    async def ask(node: dict[str, Any]) -> None:
        try:
            with trio.fail_after(3):
                async with open_client(node["address"], timeout=3) as client:
                    reply = await client.status()
            out[node["name"]] = format_heights(reply.data)
        except (SagaError, trio.TooSlowError) as exc:
            out[node["name"]] = f"unreachable: {exc}"[:60]

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(ask, node)
    return out


def format_heights(data: dict[str, Any]) -> str:
    """The shard heights of a node's status map (``shards``: shard -> {height, member, ...}) as
    ``P0:12 E/0:9``, the shards whose committee the node sits on marked with ``*``."""
    shards = data.get("shards")
    if not isinstance(shards, dict) or not shards:
        return "-"
    parts = []
    for shard, info in sorted(shards.items()):
        if isinstance(info, dict):
            parts.append(f"{shard}:{info.get('height', '?')}{'*' if info.get('member') else ''}")
    return " ".join(parts) or "-"


@devnet.command("load")
@DIR_OPTION
@click.option("--rate", required=True, type=float, help="Offered transactions per second.")
@click.option("--duration", required=True, type=float, help="Seconds of submission.")
@click.option("--mix", "mix_text", default="open=0.6,enclave=0.2,mixed=0.2", show_default=True, help="Shares of open, enclave and mixed transactions.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the workload (the devnet's keys keep the devnet's seed).")
@click.option("--drain", default=10.0, show_default=True, type=float, help="Seconds to wait after the last submission for commits.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the results as JSON to this file.")
def load(root: Path, rate: float, duration: float, mix_text: str, seed: int, drain: float, json_path: Path | None) -> None:
    """Send the simulator's mix workload to the devnet at wall-clock times and measure it.

    Each transaction goes to a node of the shard that runs it; `blocks`
    events say when it is final. Reports offered rate, submitted, accepted,
    committed, committed tx/s, p50/p90/p99 commit latency (submit to final)
    and rejections by rule. Nonces go on from the last load (DIR/nonces.json).

    \b
    Example:
        sagachain devnet load --dir devnet --rate 20 --duration 10
        sagachain devnet load --dir devnet --rate 50 --duration 20 --mix open=1 --json load.json
    """
    console = Console()
    try:
        report = run_load_command(root, rate, duration, mix_text, seed, drain, console)
    except SagaError as exc:
        _fail(exc)
    console.print(report_table(report, f"load on {root}"))
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"results written to [bold]{json_path}[/bold]")


def run_load_command(root: Path, rate: float, duration: float, mix_text: str, seed: int, drain: float, console: Console | None) -> Any:
    """Plan, sign, submit and measure one load; reserve the nonces it signs in DIR/nonces.json."""
    import trio

    from node.devnet import NONCES_FILE, load_record, running_nodes
    from node.devnet_load import LoadSpec, last_nonces, parse_mix, plan_load, run_load

    record = load_record(root)
    if not running_nodes(root, record):
        raise InputError(f"no node of the devnet in {root} is running; start one with `sagachain devnet up --dir {root}`")
    spec = LoadSpec(rate, duration, parse_mix(mix_text), seed)
    nonces_path = root / NONCES_FILE
    try:
        before = json.loads(nonces_path.read_text()) if nonces_path.exists() else {}
    except ValueError:
        raise InputError(f"{nonces_path} is damaged; delete it only if no load ever ran on this devnet, else make the devnet again") from None
    planned = plan_load(record, spec, before)
    nonces_path.write_text(json.dumps(last_nonces(planned, before), indent=1) + "\n")
    if console is None:
        return trio.run(run_load, record, spec, planned, drain)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[line]}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("submitting", total=len(planned), line="")
        last = [0.0]

        def update(tracker: Any, phase: str) -> None:
            now = time.monotonic()
            if now - last[0] < 0.1:
                return
            last[0] = now
            line = f"accepted {len(tracker.accepted)}  final {len(tracker.final)}  rejected {sum(tracker.rejected.values())}"
            progress.update(task, description=phase, completed=len(tracker.sent), line=line)

        return trio.run(run_load, record, spec, planned, drain, update)


def report_table(report: Any, title: str) -> Table:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    table.add_row("offered rate", f"{report.offered_rate:g} tx/s for {report.duration:g} s ({report.planned} tx)")
    table.add_row("submitted / accepted", f"{report.submitted} / {report.accepted}")
    table.add_row("committed (script failed)", f"{report.committed} ({report.failed_in_block})")
    table.add_row("committed tx/s", f"{report.committed_tps:.1f} over {report.window:.1f} s")
    table.add_row("commit latency p50 / p90 / p99", " / ".join(ms(report.latency_ms[p]) for p in ("p50", "p90", "p99")))
    for kind, row in report.by_kind.items():
        if row["submitted"]:
            table.add_row(f"  {kind}: submitted / accepted / committed", f"{row['submitted']} / {row['accepted']} / {row['committed']}")
    table.add_row("blocks seen", str(report.blocks))
    table.add_row("accepted, not final after the drain", str(report.pending))
    for rule, count in report.rejected.items():
        table.add_row(f"rejected: {rule}", str(count))
    return table
