"""``sagachain sweep``: grid parsing, and a small sweep whose runs give the same
chains on local processes, on a Dask cluster and in this process."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from distributed import LocalCluster

from sagachain.cli_sweep import sweep
from sagachain.core.encoding import hash_bytes
from sagachain.errors import InputError
from sagachain.sim.load import run_scenario
from sagachain.sweep import METRICS, Sweep, grid_points, parse_grid, point_slug

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.py"
GRID = ["--grid", "transfers=10,20", "--seeds", "2"]

# The lead registers the command in sagachain/cli.py; until then a group of its own.
CLI = click.Group(commands=[sweep])


def invoke(*args: str) -> Result:
    return CliRunner().invoke(CLI, ["sweep", *args])


# -- the grid -------------------------------------------------------------------------


def test_parse_grid_keeps_the_order_of_parameters_and_values() -> None:
    assert parse_grid(["transfers=20, 10", "mode=a"]) == {"transfers": ["20", "10"], "mode": ["a"]}
    assert list(parse_grid(["b=1", "a=1"])) == ["b", "a"]


def test_grid_points_are_the_product_with_the_first_parameter_slowest() -> None:
    points = grid_points({"x": ["1", "2"], "y": ["a", "b"]})
    assert points == [{"x": "1", "y": "a"}, {"x": "1", "y": "b"}, {"x": "2", "y": "a"}, {"x": "2", "y": "b"}]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "no --grid"),
        (["transfers"], "write NAME=VALUE1,VALUE2"),
        (["=1,2"], "write NAME=VALUE1,VALUE2"),
        (["transfers="], "an empty value"),
        (["transfers=10,,20"], "an empty value"),
        (["transfers=10,10"], "10 given twice"),
        (["transfers=10", "transfers=20"], "already swept"),
    ],
)
def test_parse_grid_refuses_bad_input_and_says_what_to_write(specs: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_grid(specs)


def test_point_slugs_are_file_names_and_never_collide() -> None:
    assert point_slug({"transfers": "10", "mode": "a/b"}) == "transfers=10,mode=a%2Fb"
    assert point_slug({"a": "1,b=2"}) != point_slug({"a": "1", "b": "2"})


def test_a_parameter_the_scenario_does_not_read_is_refused_before_any_run() -> None:
    with pytest.raises(InputError, match="no parameter transfer"):
        Sweep.load(QUICKSTART, parse_grid(["transfer=10"]), 1)
    with pytest.raises(InputError, match="transfers='many' is not of type int"):
        Sweep.load(QUICKSTART, parse_grid(["transfers=10,many"]), 1)


# -- a sweep ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """transfers=10,20 x seeds 1,2 on a local cluster of worker processes."""
    out = tmp_path_factory.mktemp("local")
    ran = invoke(str(QUICKSTART), *GRID, "--workers", "2", "--out", str(out))
    assert ran.exit_code == 0, ran.output
    return out


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """The address of an in-process Dask cluster, standing in for a remote one."""
    options = {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"}, "silence_logs": logging.ERROR}
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2, **options) as cluster:
        yield cluster.scheduler_address


def test_a_sweep_writes_a_csv_row_and_a_run_directory_per_point_and_seed(local_sweep: Path) -> None:
    with (local_sweep / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["param.transfers"], r["seed"]) for r in rows] == [("10", "1"), ("10", "2"), ("20", "1"), ("20", "2")]
    assert list(rows[0])[-1] == "dir" and all(m.key in rows[0] for m in METRICS)
    for row in rows:
        chain = local_sweep / row["dir"] / "chain.sgc"
        assert hash_bytes(chain.read_bytes()).hex() == row["chain_blake3"]
    assert (local_sweep / "runs" / "transfers=10" / "seed-1" / "enclaves" / "acme.key").stat().st_mode & 0o777 == 0o600


def test_sweep_json_aggregates_each_point_over_its_seeds(local_sweep: Path) -> None:
    document = json.loads((local_sweep / "sweep.json").read_text())
    assert document["grid"] == {"transfers": ["10", "20"]} and document["seeds"] == [1, 2]
    assert len(document["runs"]) == 4
    for point in document["points"]:
        runs = [r for r in document["runs"] if r["settings"] == point["settings"]]
        committed = [r["metrics"]["committed"] for r in runs]
        assert point["metrics"]["committed"] == {"mean": sum(committed) / 2, "min": min(committed), "max": max(committed)}
    assert sorted(p.name for p in (local_sweep / "plots").iterdir()) == sorted(f"{m.key}.png" for m in METRICS)


def test_a_run_gives_the_same_chain_in_the_sweep_as_on_its_own(local_sweep: Path, tmp_path: Path) -> None:
    _, summary = run_scenario(QUICKSTART, 2, tmp_path, settings={"transfers": "20"}, plots=False)
    rows = json.loads((local_sweep / "sweep.json").read_text())["runs"]
    [row] = [r for r in rows if r["settings"] == {"transfers": "20"} and r["seed"] == 2]
    assert row["chain_blake3"] == summary["chain"]["blake3"]


def test_the_same_sweep_on_a_dask_cluster_gives_the_same_results(local_sweep: Path, dask_scheduler: str, tmp_path: Path) -> None:
    ran = invoke(str(QUICKSTART), *GRID, "--scheduler", dask_scheduler, "--quiet", "--out", str(tmp_path))
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "sweep.json").read_text() == (local_sweep / "sweep.json").read_text()
    assert (tmp_path / "sweep.csv").read_text() == (local_sweep / "sweep.csv").read_text()


def test_a_run_that_fails_on_a_worker_stops_the_sweep_with_its_message(dask_scheduler: str, tmp_path: Path) -> None:
    source = QUICKSTART.read_text().replace(
        "def build(s: Scenario) -> None:\n",
        "def build(s: Scenario) -> None:\n    if s.seed == 2:\n        raise InputError('seed 2 is refused here')\n",
    )
    scenario = tmp_path / "picky.py"
    scenario.write_text("from sagachain.errors import InputError\n" + source)
    ran = invoke(str(scenario), "--grid", "transfers=10", "--seeds", "2", "--scheduler", dask_scheduler, "--quiet", "--out", str(tmp_path / "out"))
    assert ran.exit_code == 2, ran.output
    assert "run runs/transfers=10/seed-2: seed 2 is refused here" in ran.output
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_workers_with_a_scheduler_is_an_error(dask_scheduler: str, tmp_path: Path) -> None:
    ran = invoke(str(QUICKSTART), *GRID, "--scheduler", dask_scheduler, "--workers", "2", "--out", str(tmp_path))
    assert ran.exit_code == 2
    assert "drop --workers" in ran.output


def test_a_bad_grid_on_the_command_line_exits_2_with_the_scenario_parameters(tmp_path: Path) -> None:
    ran = invoke(str(QUICKSTART), "--grid", "load=1,2", "--out", str(tmp_path))
    assert ran.exit_code == 2
    assert "no parameter load" in ran.output and "transfers" in ran.output
    assert not (tmp_path / "sweep.csv").exists()


def test_help_shows_an_example() -> None:
    ran = invoke("--help")
    assert ran.exit_code == 0
    assert "Example:" in ran.output
    assert "sagachain sweep scenarios/quickstart.py --grid transfers=20,40,80 --seeds 3\n" in ran.output


def test_docs_describe_every_metric() -> None:
    text = (ROOT / "docs" / "SWEEPS.md").read_text()
    missing = [m.key for m in METRICS if f"`{m.key}`" not in text]
    assert not missing, f"docs/SWEEPS.md does not describe metrics {missing}"
