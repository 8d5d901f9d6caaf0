"""Parameter sweeps: one scenario over a grid of settings and several seeds.

A sweep is the cartesian product of ``--grid name=v1,v2,...`` options times
seeds 1..N; each (grid point, seed) is an ordinary ``sagachain run``. Runs are
independent, so they go to a Dask cluster: a ``LocalCluster`` of processes on
this machine by default, or the cluster behind ``--scheduler ADDRESS``.

A run must not depend on where it executed. So a worker gets the scenario's
*source* (not a path it might not have, or have in another version), runs it in
a temporary directory, and sends every file the run wrote back to the caller,
which stores them under ``DIR/runs/<point>/seed-<s>/``. Workers need the
project installed, nothing else: no shared file system. ``sweep.csv`` and
``sweep.json`` hold only deterministic figures (no wall time, no host names),
so the same sweep gives the same bytes wherever its runs executed.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import os
import shutil
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sagachain import __version__
from sagachain.core.encoding import hash_bytes
from sagachain.errors import InputError, SagaError

if TYPE_CHECKING:
    from distributed import Client

# How long to wait for a remote scheduler to answer and for its first worker to
# show up; past that, the address is most likely wrong or no worker was started.
CONNECT_TIMEOUT_S = 30

Number = int | float


@dataclass(frozen=True)
class Metric:
    """One figure tabulated per run: a CSV column, a JSON entry and a plot."""

    key: str
    label: str
    unit: str
    read: Callable[[dict[str, Any]], Number | None]


def _total(part: str) -> Callable[[dict[str, Any]], int]:
    """A reader summing one per-kind counter of the summary's metrics (committed, gas_charged, ...)."""
    return lambda summary: sum(summary["metrics"][part].values())


METRICS: tuple[Metric, ...] = (
    Metric("committed", "committed transactions", "tx", _total("committed")),
    Metric("committed_open", "committed open transactions", "tx", lambda s: s["metrics"]["committed"].get("open", 0)),
    Metric("committed_enclave", "committed enclave transactions", "tx", lambda s: s["metrics"]["committed"].get("enclave", 0)),
    Metric("committed_mixed", "committed mixed transactions", "tx", lambda s: s["metrics"]["committed"].get("mixed", 0)),
    Metric("failed_open", "open transactions committed as failed", "tx", lambda s: s["metrics"]["failed_open"]),
    Metric("rejected", "transactions refused before execution", "tx", _total("rejected_transactions")),
    Metric("latency_p50", "commit latency p50", "virtual ms", lambda s: s["metrics"]["latency_ms"]["p50"]),
    Metric("latency_p99", "commit latency p99", "virtual ms", lambda s: s["metrics"]["latency_ms"]["p99"]),
    Metric("throughput", "throughput", "tx per virtual s", lambda s: s["throughput_tx_per_virtual_s"]),
    Metric("blocks", "blocks", "blocks", lambda s: s["chain"]["blocks"]),
    Metric("ignored_blocks", "ignored blocks", "blocks", lambda s: s["metrics"]["ignored_blocks"]),
    Metric("account_transfers", "account transfers (L2L acquires)", "transfers", lambda s: s["metrics"]["transfers"]["acquires"]),
    Metric("transfer_ms", "account transfer time, mean (release + gossip + acquire)", "virtual ms", lambda s: s["metrics"]["transfer_ms"]["total"]["mean"]),
    Metric("queue_wait_p50", "queue wait p50", "virtual ms", lambda s: s["metrics"]["queue_wait_ms"]["p50"]),
    Metric("coinbase", "coinbase minted", "SagaCoin", lambda s: s["supply"]["coinbase"]),
    Metric("fees", "fees", "SagaCoin", lambda s: s["supply"]["fees"]),
    Metric("gas_charged", "gas charged", "gas", _total("gas_charged")),
)


@dataclass(frozen=True)
class ResultPath:
    """Reads the number at a dotted path of a run's ``results.json`` (``metrics.latency_ms.p50``).

    A path that is absent in a run reads as not measured (None), like latency
    without commits; a path that names something other than a number is an error.
    """

    path: str

    def __call__(self, summary: dict[str, Any]) -> Number | None:
        value: Any = summary
        for key in self.path.split("."):
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        kind = "an object with " + ", ".join(sorted(value)[:6]) if isinstance(value, dict) else f"a {type(value).__name__}"
        raise InputError(f"--metric {self.path}: results.json holds {kind} there, not a number; name a number inside it")


def metric_at(path: str) -> Metric:
    """The metric a ``--metric PATH`` names: the number at ``path`` in each run's results.json."""
    keys = path.split(".")
    if not path or not all(k.strip() for k in keys) or path != path.strip():
        raise InputError(f"--metric {path!r}: write a dotted path into results.json, e.g. metrics.latency_ms.p50")
    if path in {m.key for m in METRICS}:
        raise InputError(f"--metric {path}: {path} is already a metric of every sweep; name a path into results.json")
    return Metric(path, path, "value", ResultPath(path))


def sweep_metrics(paths: Sequence[str] = ()) -> tuple[Metric, ...]:
    """Every sweep's metrics, then one per ``--metric`` path (each once)."""
    repeated = sorted({p for p in paths if list(paths).count(p) > 1})
    if repeated:
        raise InputError(f"--metric {', '.join(repeated)} given twice; give each path once")
    return METRICS + tuple(metric_at(p) for p in paths)


# -- the grid ----------------------------------------------------------------------


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["transfers=10,20", "load=1"]`` as ``{"transfers": ["10", "20"], "load": ["1"]}``.

    Order is kept: the first parameter is the x axis of the plots and varies
    slowest in the run order. Values stay strings; the scenario's ``s.param``
    converts them to the type of its default, as it does for ``--set``.
    """
    if not specs:
        raise InputError("no --grid given; sweep at least one parameter, e.g. --grid transfers=10,20")
    grid: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, values_text = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--grid {spec!r}: write NAME=VALUE1,VALUE2,...")
        if name in grid:
            raise InputError(f"--grid {spec!r}: parameter {name} is already swept; list all its values in one --grid {name}=...")
        values = [v.strip() for v in values_text.split(",")]
        if "" in values:
            raise InputError(f"--grid {spec!r}: an empty value; separate values by single commas, e.g. {name}=10,20")
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise InputError(f"--grid {spec!r}: value(s) {', '.join(repeated)} given twice; list each value once (seeds repeat runs)")
        grid[name] = values
    return grid


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the first parameter varying slowest."""
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_slug(point: dict[str, str]) -> str:
    """A directory name for a grid point, ``transfers=10,load=1``.

    Names and values are percent-quoted, so the slug is a safe file name
    (no ``/``) and two different points never share a directory.
    """
    return ",".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in point.items())


# -- one run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for one run; no path of the caller's machine."""

    scenario_name: str
    source: str
    settings: dict[str, str]
    seed: int
    paths: tuple[str, ...] = ()  # the sweep's --metric paths


    @property
    def directory(self) -> str:
        """Where the run's files go, relative to the sweep's DIR."""
        return f"runs/{point_slug(self.settings)}/seed-{self.seed}"


@dataclass(frozen=True)
class RunRecord:
    """The small, deterministic result of one run that the sweep tabulates."""

    settings: dict[str, str]
    seed: int
    directory: str
    digest: str
    metrics: dict[str, Number | None]

    def to_json(self) -> dict[str, Any]:
        return {"settings": self.settings, "seed": self.seed, "dir": self.directory, "chain_blake3": self.digest, "metrics": self.metrics}


@dataclass(frozen=True)
class OutputFile:
    """A file a run wrote, carried back from the worker: its path under the run's directory, bytes and mode."""

    path: str
    data: bytes
    mode: int


@dataclass(frozen=True)
class RunOutput:
    record: RunRecord
    files: list[OutputFile]


def execute_run(spec: RunSpec) -> RunOutput:
    """Run one (grid point, seed) wherever this is called, and return its record and files.

    Module-level so Dask can pickle it by reference. The scenario is written
    under its own file name, since the name is part of the genesis's chain id.
    The run's own plots are skipped: they take seconds each, and the sweep
    draws its comparison plots from the records.

    A project error is raised again as an :class:`InputError` naming the run:
    the caller must know which run failed, and several of the project's
    errors take arguments that do not survive the pickling back to the caller.
    """
    from sagachain.sim.load import run_scenario

    with TemporaryDirectory(prefix="sagachain-sweep-") as tmp:
        scenario = Path(tmp) / spec.scenario_name
        scenario.write_text(spec.source)
        out = Path(tmp) / "out"
        try:
            _, summary = run_scenario(scenario, spec.seed, out, settings=spec.settings, plots=False)
        except SagaError as exc:
            alone = " ".join([f"sagachain run {spec.scenario_name} --seed {spec.seed}", *(f"--set {k}={v}" for k, v in spec.settings.items())])
            raise InputError(f"run {spec.directory}: {exc}; to look into it, run it alone: {alone}") from None
        files = [OutputFile(p.relative_to(out).as_posix(), p.read_bytes(), p.stat().st_mode & 0o777) for p in sorted(out.rglob("*")) if p.is_file()]
    metrics = {m.key: m.read(summary) for m in sweep_metrics(spec.paths)}
    record = RunRecord(dict(spec.settings), spec.seed, spec.directory, summary["chain"]["blake3"], metrics)
    return RunOutput(record, files)


def _installed_version() -> str:
    """The sagachain version a worker runs; compared with the caller's before a remote sweep."""
    return __version__


# -- the sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """A scenario file, its grid and the number of seeds: the whole definition of a sweep."""

    scenario: Path
    grid: dict[str, list[str]]
    seeds: int
    source: str = field(repr=False)
    paths: tuple[str, ...] = ()  # --metric: more figures, read from each run's results.json

    @classmethod
    def load(cls, scenario: Path, grid: dict[str, list[str]], seeds: int, paths: Sequence[str] = ()) -> Sweep:
        """Read the scenario and check every grid point builds, before any run is sent out.

        Building is cheap and catches a misspelt parameter or a value of the
        wrong type here, with the scenario's own message, instead of in a
        worker's traceback.
        """
        from sagachain.sim.load import load_scenario

        if seeds < 1:
            raise InputError(f"--seeds {seeds}: give at least 1")
        if not scenario.is_file():
            raise InputError(f"scenario file {scenario} does not exist")
        sweep_metrics(paths)  # a malformed --metric stops the sweep before any run
        sweep = cls(scenario, grid, seeds, scenario.read_text(), tuple(paths))
        for point in sweep.points:
            try:
                load_scenario(scenario, 1, point)
            except InputError as exc:
                raise InputError(f"--grid point {point_slug(point)}: {exc}") from None
        return sweep

    @property
    def points(self) -> list[dict[str, str]]:
        return grid_points(self.grid)

    @property
    def runs(self) -> list[RunSpec]:
        """One spec per (point, seed), in the order of the CSV: points as listed, then seeds."""
        return [RunSpec(self.scenario.name, self.source, point, seed, self.paths) for point in self.points for seed in range(1, self.seeds + 1)]

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return sweep_metrics(self.paths)


@contextmanager
def dask_client(scheduler: str | None, workers: int | None, runs: int) -> Iterator[Client]:
    """A Dask client: to the scheduler at ``scheduler``, or to a fresh local cluster of processes.

    The local cluster has one single-threaded worker process per core (or
    ``workers``), never more than there are runs: the simulator is pure Python,
    so threads would only wait on each other.
    """
    from distributed import Client, LocalCluster

    if scheduler is None:
        size = min(workers or _cores(), runs)
        # No dashboard; the scheduler's HTTP endpoint still listens, so on a free
        # local port rather than 8787, which another cluster may hold.
        local = LocalCluster(
            n_workers=size,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
        with local as cluster, Client(cluster) as client:
            yield client
        return
    if workers is not None:
        raise InputError(f"--workers {workers} sizes the local cluster; with --scheduler the cluster's own workers run the sweep, so drop --workers")
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc}); start one with `dask scheduler` and pass the address it prints") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise InputError(f"--scheduler {scheduler}: no worker joined within {CONNECT_TIMEOUT_S} s; start one with `dask worker {scheduler}`") from None
        _check_versions(client, scheduler)
        yield client


def _check_versions(client: Client, scheduler: str) -> None:
    """Refuse workers that cannot import sagachain or run another version: their chains could differ."""
    try:
        versions = client.run(_installed_version)
    except Exception as exc:  # noqa: BLE001 - whatever a worker raised (ImportError, most likely), the remedy is the same
        raise InputError(f"--scheduler {scheduler}: a worker cannot run sagachain ({type(exc).__name__}: {exc}); install the project in every worker's environment") from None
    wrong = {worker: version for worker, version in versions.items() if version != __version__}
    if wrong:
        listed = ", ".join(f"{worker} has {version}" for worker, version in sorted(wrong.items()))
        raise InputError(f"--scheduler {scheduler}: this is sagachain {__version__} but {listed}; install the same version on every worker")


def _cores() -> int:
    """Cores this process may use (the affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_sweep(sweep: Sweep, out: Path, client: Client, on_done: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
    """Run every (point, seed) on ``client``'s cluster; store each run's files under ``out``.

    Records come back in the sweep's order, whatever order the runs finished
    in. A failed run cancels the others and its exception is raised here.
    """
    from distributed import as_completed

    specs = sweep.runs
    futures = client.map(execute_run, specs, pure=False)
    position = {future.key: i for i, future in enumerate(futures)}
    records: dict[int, RunRecord] = {}
    try:
        for future in as_completed(futures):
            output: RunOutput = future.result()
            _store(output, out)
            records[position[future.key]] = output.record
            future.release()  # the files are stored; let the cluster free them
            if on_done is not None:
                on_done(output.record)
    except BaseException:
        client.cancel(futures)
        raise
    return [records[i] for i in range(len(specs))]


def _store(output: RunOutput, out: Path) -> None:
    """Write a run's files under ``out``, replacing what an earlier sweep left in the same directory."""
    directory = out / output.record.directory
    if directory.exists():
        shutil.rmtree(directory)
    for file in output.files:
        path = directory / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data)
        path.chmod(file.mode)


# -- summaries and output files -------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Mean, minimum and maximum of one metric over a grid point's seeds."""

    mean: float
    low: Number
    high: Number

    def to_json(self) -> dict[str, Number]:
        return {"mean": round(self.mean, 3), "min": self.low, "max": self.high}


@dataclass(frozen=True)
class PointStats:
    """A grid point's runs and, per metric, the spread over them (None if no run measured it)."""

    settings: dict[str, str]
    runs: list[RunRecord]
    spread: dict[str, Spread | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "dir": f"runs/{point_slug(self.settings)}",
            "seeds": [r.seed for r in self.runs],
            "chain_blake3": [r.digest for r in self.runs],
            "metrics": {key: spread.to_json() if spread else None for key, spread in self.spread.items()},
        }


def point_stats(sweep: Sweep, records: list[RunRecord]) -> list[PointStats]:
    """Group the records by grid point and take each metric's spread over the seeds.

    A metric a run could not measure (latency without committed transactions)
    is left out of its point's spread rather than counted as zero.
    """
    stats = []
    for point in sweep.points:
        runs = [r for r in records if r.settings == point]
        spread: dict[str, Spread | None] = {}
        for metric in sweep.metrics:
            values = [v for r in runs if (v := r.metrics[metric.key]) is not None]
            spread[metric.key] = Spread(statistics.fmean(values), min(values), max(values)) if values else None
        stats.append(PointStats(point, runs, spread))
    return stats


def write_csv(sweep: Sweep, records: list[RunRecord], path: Path) -> None:
    """One row per run: the grid's settings, the seed, the chain digest, every metric, the run's directory.

    Setting columns are ``param.NAME``, so a parameter named like a metric
    (``blocks``, ``seed``) cannot shadow it.
    """
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*(f"param.{name}" for name in sweep.grid), "seed", "chain_blake3", *(m.key for m in sweep.metrics), "dir"])
        for r in records:
            values = ["" if (v := r.metrics[m.key]) is None else v for m in sweep.metrics]
            writer.writerow([*r.settings.values(), r.seed, r.digest, *values, r.directory])


def write_json(sweep: Sweep, records: list[RunRecord], stats: list[PointStats], path: Path) -> None:
    document = {
        "version": __version__,
        "scenario": {"file": sweep.scenario.name, "blake3": hash_bytes(sweep.source.encode()).hex()},
        "grid": sweep.grid,
        "seeds": list(range(1, sweep.seeds + 1)),
        "metrics": {m.key: {"label": m.label, "unit": m.unit} for m in sweep.metrics},
        "runs": [r.to_json() for r in records],
        "points": [s.to_json() for s in stats],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_plots(sweep: Sweep, stats: list[PointStats], directory: Path) -> list[Path]:
    """One PNG per metric: x the first grid parameter, a line per combination of the others.

    Points are the mean over seeds, error bars reach the minimum and maximum.
    Uses matplotlib's object API with the Agg canvas, so no display and no
    pyplot global state are involved.
    """
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    x_name, *others = sweep.grid
    x_values = sweep.grid[x_name]
    numeric = all(_is_number(v) for v in x_values)
    position = {v: float(v) if numeric else float(i) for i, v in enumerate(x_values)}
    lines: dict[tuple[str, ...], list[PointStats]] = {}
    for point in stats:
        lines.setdefault(tuple(point.settings[o] for o in others), []).append(point)
    written = []
    for metric in sweep.metrics:
        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        axes = figure.subplots()
        lows: list[float] = []
        for rest, points in lines.items():
            measured = [(position[p.settings[x_name]], s) for p in points if (s := p.spread[metric.key]) is not None]
            if not measured:
                continue
            xs = [x for x, _ in measured]
            means = [s.mean for _, s in measured]
            # max(0, ..): a mean of floats can land a rounding error outside its own range
            errors = [[max(0.0, s.mean - s.low) for _, s in measured], [max(0.0, s.high - s.mean) for _, s in measured]]
            label = ", ".join(f"{o}={v}" for o, v in zip(others, rest, strict=True)) or None
            axes.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=label)
            lows.extend(s.low for _, s in measured)
        if not numeric:
            axes.set_xticks(list(position.values()), x_values)
        elif _spans_decades(list(position.values())):
            axes.set_xscale("log")
        if _spans_decades(lows):
            axes.set_yscale("log")
        axes.set_xlabel(x_name)
        axes.set_ylabel(f"{metric.unit}: mean, bars min\u2013max over {sweep.seeds} seed(s)")
        axes.set_title(f"{sweep.scenario.stem}: {metric.label}", fontsize="medium")
        if others and axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
        path = directory / f"{metric.key}.png"
        figure.savefig(path, dpi=100)
        written.append(path)
    return written


def _spans_decades(values: list[float]) -> bool:
    """An axis is drawn on a log scale when its values are all positive and span two decades or more
    (sizes 4 to 1,000, bytes 200 to 80,000): a linear one would crush the small end flat."""
    return bool(values) and min(values) > 0 and max(values) >= 100 * min(values)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SweepResult:
    records: list[RunRecord]
    stats: list[PointStats]
    plots: list[Path]


def write_outputs(sweep: Sweep, records: list[RunRecord], out: Path) -> SweepResult:
    """``out/sweep.csv``, ``out/sweep.json`` and ``out/plots/*.png`` from the sweep's records."""
    stats = point_stats(sweep, records)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(sweep, records, out / "sweep.csv")
    write_json(sweep, records, stats, out / "sweep.json")
    plots = write_plots(sweep, stats, out / "plots")
    return SweepResult(records, stats, plots)
