"""The ``sagachain`` command: ``run`` a scenario, ``audit`` a chain file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from sagachain import __version__
from sagachain.errors import InputError
from sagachain.cli_devnet import devnet
from sagachain.cli_enclave import enclave
from sagachain.cli_fuzz import fuzz
from sagachain.cli_leakage import leakage
from sagachain.cli_mailbox import mailbox, registry
from sagachain.cli_node import node
from sagachain.cli_run import run
from sagachain.cli_sweep import sweep
from sagachain.cli_tx import tx

if TYPE_CHECKING:
    from sagachain.audit.auditor import AuditReport
    from sagachain.core.chainfile import ChainFile
    from shards.enclave_store import EnclaveStore

PROGRESS_MIN_BLOCKS = 200


@click.group()
@click.version_option(__version__, prog_name="sagachain")
def main() -> None:
    """SagaChain: simulator, node and auditor of a sharded ledger with enclave shards.

    \b
    Example:
        sagachain run scenarios/quickstart.py --seed 1 --out out/quickstart
        sagachain audit out/quickstart/chain.sgc
    """


@main.command("audit")
@click.argument("chain", type=click.Path(path_type=Path))
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the report as JSON to this file.")
@click.option(
    "--enclave-state",
    "states",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="An enclave's sealed initial state (OUT/enclaves/E.sealed); repeatable, paired in order with --enclave-key.",
)
@click.option(
    "--enclave-key",
    "keys",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The hex key that opens the matching --enclave-state (OUT/enclaves/E.key).",
)
@click.option("--max-violations", default=20, show_default=True, type=click.IntRange(min=0), help="How many violations to list, in the table and the JSON report (the counts cover all of them).")
@click.option(
    "--crypto",
    type=click.Choice(["real", "modelled"]),
    default="real",
    show_default=True,
    help="How signatures are checked: Ed25519, or the stand-ins of a simulation run in modelled crypto mode.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def audit(chain: Path, json_path: Path | None, states: tuple[Path, ...], keys: tuple[Path, ...], max_violations: int, crypto: str, quiet: bool) -> None:
    """Check every rule public data can check over every block of CHAIN.

    CHAIN is a chain file, or a node's data directory (its node.sqlite is
    exported to DIR/export.sgc first).

    Prints one line per rule (what it checks, how many blocks and
    transactions it checked, its violations), then the first violations,
    then the blocks the chain ignores (terminated or broken-away enclaves).
    Given an enclave's sealed state and key, also re-executes that enclave's
    transactions and checks their state and log hashes (TX-6).

    Exit status: 0 well-formed, 1 violations found, 2 CHAIN is not a
    readable chain file (or an enclave state or key file is unusable).

    \b
    Example:
        sagachain audit out/quickstart/chain.sgc --json audit.json \\
            --enclave-state out/quickstart/enclaves/acme.sealed \\
            --enclave-key out/quickstart/enclaves/acme.key
    """
    from sagachain.audit.auditor import load_enclave
    from sagachain.audit.report import print_report, write_json
    from sagachain.core.chainfile import read_chain
    from sagachain.errors import ChainFormatError, SagaError

    console = Console()
    err = Console(stderr=True, soft_wrap=True)  # error lines stay whole: they name files and offsets
    if len(states) != len(keys):
        err.print(f"[red]error:[/red] {len(states)} --enclave-state but {len(keys)} --enclave-key; give them in pairs, state then key")
        sys.exit(2)
    try:
        chain_file = read_chain(_exported(chain) if chain.is_dir() else chain)
    except ChainFormatError as exc:
        err.print(f"error: {chain} is not a readable chain file: {exc.message}", markup=False, style="red")
        sys.exit(2)
    except SagaError as exc:  # a node directory without a database, or a database that cannot be read
        err.print(f"error: {exc}", markup=False, style="red")
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the reader should raise ChainFormatError; never show a traceback
        err.print(f"error: {chain} is not a readable chain file ({type(exc).__name__}: {exc})", markup=False, style="red")
        sys.exit(2)
    enclaves = {}
    try:
        for state_path, key_path in zip(states, keys, strict=True):
            store = load_enclave(state_path, key_path)
            if store.enclave in enclaves:
                raise InputError(f"enclave {store.enclave!r} is given twice (again in {state_path})")
            enclaves[store.enclave] = store
        report = _run_audit(chain_file, enclaves, err, quiet, crypto)
    except InputError as exc:
        err.print(f"error: {exc}", markup=False, style="red")
        sys.exit(2)
    print_report(report, console, max_violations)
    if json_path is not None:
        try:
            write_json(report, json_path, max_violations)
        except OSError as exc:
            err.print(f"error: cannot write the JSON report to {json_path}: {exc.strerror}", markup=False)
            sys.exit(2)
        console.print(f"report written to [bold]{json_path}[/bold]")
    sys.exit(0 if report.ok else 1)


def _exported(directory: Path) -> Path:
    """A node's data directory: export its chain (node.sqlite) to a chain file next to it and audit that."""
    from node.config import DATABASE_FILE
    from node.storage import NodeStore

    database = directory / DATABASE_FILE
    if not database.is_file():
        raise InputError(f"{directory} is a directory without {DATABASE_FILE}; give a chain file or a node's data directory")
    target = directory / "export.sgc"
    with NodeStore.open(database) as store:
        store.export_chain(target)
    return target


def _run_audit(chain_file: ChainFile, enclaves: dict[str, EnclaveStore], err: Console, quiet: bool, crypto: str) -> AuditReport:
    """The audit, with a progress bar on stderr when it is a terminal and the chain is long."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sagachain.audit.auditor import audit_chain
    from shards.tools import tools_for

    tools = tools_for(crypto)
    total = len(chain_file.blocks)
    if quiet or not err.is_terminal or total < PROGRESS_MIN_BLOCKS:
        return audit_chain(chain_file, tools, enclaves)
    with Progress(TextColumn("[bold]auditing"), BarColumn(), MofNCompleteColumn(), TextColumn("blocks"), TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("audit", total=total)
        return audit_chain(chain_file, tools, enclaves, lambda done: progress.update(task, completed=done))


main.add_command(run)
main.add_command(leakage)
main.add_command(sweep)
main.add_command(fuzz)
main.add_command(node)
main.add_command(devnet)
main.add_command(tx)
main.add_command(enclave)
main.add_command(mailbox)
main.add_command(registry)


if __name__ == "__main__":
    main()
