"""Loading a scenario file and running it end to end."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagachain.errors import InputError
from sagachain.sim.output import write_results
from sagachain.sim.runner import SimResult, Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world.build import build_world
from shards.tools import tools_for


def load_scenario(path: Path, seed: int, settings: dict[str, str] | None = None, committees: str | None = None) -> Scenario:
    """Run the scenario file's ``build(s)`` on a fresh Scenario seeded with ``seed``.

    ``settings`` are the command line's ``--set name=value``; one the scenario
    never reads with ``s.param`` is an error, since it is most likely a typo.
    ``committees`` overrides the scenario's committee model (``Scenario.committees``).
    """
    if not path.is_file():
        raise InputError(f"scenario file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"sagachain_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise InputError(f"{path}:{exc.lineno}: {exc.msg}") from None
    build = getattr(module, "build", None)
    if not callable(build):
        raise InputError(f"{path} defines no build(s) function; see scenarios/quickstart.py")
    scenario = Scenario(seed, name=path.stem, settings=settings)
    build(scenario)
    if committees is not None:
        scenario.committees(committees)
    unused = scenario.unused_settings()
    if unused:
        known = ", ".join(sorted(scenario.used)) or "none"
        raise InputError(f"{path.name} has no parameter {', '.join(unused)}; its parameters: {known}")
    return scenario


def run_scenario(
    path: Path,
    seed: int,
    out: Path,
    on_progress: Callable[[int], None] | None = None,
    settings: dict[str, str] | None = None,
    plots: bool = True,
    committees: str | None = None,
) -> tuple[SimResult, dict[str, Any]]:
    scenario = load_scenario(path, seed, settings, committees)
    world = build_world(scenario)
    initial = {e: store.copy() for e, store in world.stores.items()}
    result = Simulation(world, tools_for(scenario.crypto), on_progress).run()
    summary = write_results(result, out, initial, plots)
    return result, summary
