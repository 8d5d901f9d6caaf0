"""``sagachain leakage``: what the public chain reveals about each enclave, and how it separates two runs.

JSON output (``--json OUT``), version 1::

    {
      "version": 1,
      "chain": "out/a/chain.sgc",
      "enclaves": {
        "acme": {
          "shards": ["acme/0", "acme/1"],
          "signals": {"gas_charged": {"n": 5, "mean": 185.2, "min": 100, "max": 249} | null, ...},
          "touched": {"<hex account id>": 2, ...},     # how often each public account was touched
          "users": {"<hex account id>": 3, ...},
          "scripts": {"v.record(1)": 7, ...}           # how often each script text was seen
        }
      },
      "compare": {                                     # only with --compare
        "chain": "out/b/chain.sgc",
        "enclaves": {
          "acme": {"gas_charged": {"statistic": 0.0, "n_a": 5, "n_b": 9, "critical": 0.73} | null, ...,
                   "touched": {"statistic": 0.5, "n_a": 2, "n_b": 4, "critical": null}, ...}
        }
      }
    }

``statistic`` is the KS statistic of a numeric signal (``critical``: the
asymptotic 5 % bound, may exceed 1) or the Jaccard distance of a set signal
(``n``: distinct members; no bound). A signal with no samples on a side is null.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sagachain.analysis.leakage import SETS, SIGNALS, Observation, ks_critical, observe, separation
from sagachain.core.chainfile import ChainFile, read_chain
from sagachain.core.genesis import Genesis
from sagachain.errors import ChainFormatError

SHOWN_MEMBERS = 8
SCRIPT_SHOWN = 40


@click.command("leakage")
@click.argument("chain", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--compare", "other", type=click.Path(path_type=Path, dir_okay=False), help="A second chain file; show how well each signal separates the same enclave in the two.")
@click.option("--enclave", "only", metavar="NAME", help="Only this enclave (default: every enclave of the genesis).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write the signals (and separations) as JSON to this file.")
def leakage(chain: Path, other: Path | None, only: str | None, json_path: Path | None) -> None:
    """Show what an outside observer of CHAIN learns about each enclave.

    Reads only public data: for each enclave, the gas its transactions were
    charged (GAS-3), their script and entry sizes, the size and timing of its
    shards' blocks, the public accounts its transactions touch and their
    scripts (public by TX-3). With --compare, also the separation of each
    signal between the same enclave in the two chains: the KS statistic (0
    indistinguishable, 1 perfectly separable; compare it with the 5 % bound
    beside it, few samples are noisy) and, for the sets of accounts and
    scripts, the Jaccard distance. See docs/LEAKAGE.md.

    Exit status: 0 done, 2 a chain file is unreadable, the enclave is
    unknown, or the JSON file cannot be written.

    \b
    Example:
        sagachain leakage out/light/chain.sgc
        sagachain leakage out/light/chain.sgc --compare out/heavy/chain.sgc \\
            --enclave acme --json leakage.json
    """
    console = Console()
    err = Console(stderr=True, soft_wrap=True)
    first = _load(chain, err)
    found = _select(observe(first), only, chain, err)
    document: dict[str, Any] = {"version": 1, "chain": str(chain), "enclaves": {}}
    for name, obs in found.items():
        console.print(signals_table(obs, chain))
        console.print(sets_table(obs, first.genesis))
        document["enclaves"][name] = observation_json(obs)
    if other is not None:
        second = _load(other, err)
        theirs = observe(second)
        compared: dict[str, Any] = {}
        for name, obs in found.items():
            if name not in theirs:
                console.print(f"[yellow]enclave {name} is not in {other}; nothing to compare[/yellow]")
                continue
            console.print(separation_table(obs, theirs[name], chain, other))
            compared[name] = separation_json(obs, theirs[name])
        document["compare"] = {"chain": str(other), "enclaves": compared}
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            err.print(f"error: cannot write {json_path}: {exc.strerror}", markup=False, style="red")
            sys.exit(2)
        console.print(f"signals written to [bold]{json_path}[/bold]")


def _load(path: Path, err: Console) -> ChainFile:
    """The chain file, or exit 2 with one line saying why not (never a traceback)."""
    try:
        return read_chain(path)
    except ChainFormatError as exc:
        err.print(f"error: {path} is not a readable chain file: {exc.message}", markup=False, style="red")
    except Exception as exc:  # noqa: BLE001 - the reader should raise ChainFormatError; never show a traceback
        err.print(f"error: {path} is not a readable chain file ({type(exc).__name__}: {exc})", markup=False, style="red")
    sys.exit(2)


def _select(found: dict[str, Observation], only: str | None, chain: Path, err: Console) -> dict[str, Observation]:
    """All observations, or just ``only``; an unknown name is an input error, not an empty table."""
    if only is None:
        return found
    if only not in found:
        err.print(f"error: {chain} has no enclave {only!r}; it has: {', '.join(sorted(found)) or 'none'}", markup=False, style="red")
        sys.exit(2)
    return {only: found[only]}


def _number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.3f}"


def signals_table(obs: Observation, chain: Path) -> Table:
    table = Table(title=f"enclave {obs.enclave} ({', '.join(obs.shards)}) as seen on {chain}")
    table.add_column("signal", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("min", justify="right")
    table.add_column("max", justify="right")
    table.add_column("one sample is")
    for name, meaning in SIGNALS.items():
        summary = obs.summary(name)
        if summary is None:
            table.add_row(name, "0", "", "", "", Text(meaning, style="dim"))
        else:
            table.add_row(name, str(summary.n), _number(summary.mean), _number(summary.min), _number(summary.max), meaning)
    return table


def _member(value: bytes | str, genesis: Genesis) -> str:
    """An account by its genesis name (an id prefix if it has none), a script by its text, shortened."""
    if isinstance(value, str):
        flat = value.replace("\n", "⏎ ")
        return repr(flat if len(flat) <= SCRIPT_SHOWN else flat[: SCRIPT_SHOWN - 1] + "…")
    for record in genesis.accounts:
        if record.id == value:
            return record.name
    return value.hex()[:12]


def sets_table(obs: Observation, genesis: Genesis) -> Table:
    table = Table(title=f"what enclave {obs.enclave}'s transactions show (most frequent {SHOWN_MEMBERS} of each)")
    table.add_column("set", no_wrap=True)
    table.add_column("distinct", justify="right")
    table.add_column("members (times seen)")
    for name, meaning in SETS.items():
        counts = obs.set_signal(name)
        listed = ", ".join(f"{_member(m, genesis)} ({n})" for m, n in counts.most_common(SHOWN_MEMBERS))
        table.add_row(name, str(len(counts)), Text(listed or f"none ({meaning})", style="" if listed else "dim"))
    return table


def separation_table(a: Observation, b: Observation, chain: Path, other: Path) -> Table:
    table = Table(title=f"separation of enclave {a.enclave}: {chain} vs {other}")
    table.add_column("signal", no_wrap=True)
    table.add_column("n a", justify="right")
    table.add_column("n b", justify="right")
    table.add_column("statistic", justify="right")
    table.add_column("5% bound", justify="right")
    table.add_column("reading")
    for name, row in separation_json(a, b).items():
        if row is None:
            table.add_row(name, str(len(a.samples[name])), str(len(b.samples[name])), "", "", Text("no samples on a side", style="dim"))
            continue
        statistic, bound = row["statistic"], row["critical"]
        if bound is None:
            reading = Text(f"{statistic:.0%} of members not in both", style="bold red") if statistic else Text("same members", style="green")
        elif bound >= 1:
            reading = Text("too few samples to tell", style="yellow")
        elif statistic > bound:
            reading = Text("separates", style="bold red")
        else:
            reading = Text("not told apart", style="green")
        table.add_row(name, str(row["n_a"]), str(row["n_b"]), f"{statistic:.3f}", "" if bound is None else f"{bound:.3f}", reading)
    return table


def observation_json(obs: Observation) -> dict[str, Any]:
    signals: dict[str, Any] = {}
    for name in SIGNALS:
        summary = obs.summary(name)
        signals[name] = None if summary is None else {"n": summary.n, "mean": summary.mean, "min": summary.min, "max": summary.max}
    return {
        "shards": list(obs.shards),
        "signals": signals,
        **{name: {m if isinstance(m, str) else m.hex(): n for m, n in obs.set_signal(name).most_common()} for name in SETS},
    }


def separation_json(a: Observation, b: Observation) -> dict[str, dict[str, Any] | None]:
    """Per signal: the statistic, both sample counts and the 5 % KS bound (None for sets); None without samples."""
    values = separation(a, b)
    out: dict[str, dict[str, Any] | None] = {}
    for name in SIGNALS:
        n_a, n_b = len(a.samples[name]), len(b.samples[name])
        out[name] = None if name not in values else {"statistic": values[name], "n_a": n_a, "n_b": n_b, "critical": ks_critical(n_a, n_b)}
    for name in SETS:
        out[name] = {"statistic": values[name], "n_a": len(a.set_signal(name)), "n_b": len(b.set_signal(name)), "critical": None}
    return out
