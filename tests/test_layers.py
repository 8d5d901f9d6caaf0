"""The layers of ARCHITECTURE.md hold: no module imports a layer above its own.

The simulator and the node share every line of protocol logic only as long as
the protocol (``sagachain.core``, ``runtimes``, ``shards``) and what both
drivers build from declarations (``sagachain.world``) never reach up into a
driver, and the two drivers never reach into each other: an import the other
way would let the node run simulator code (or the reverse), and the chains the
two make could then differ for reasons no test of one driver sees. Python does
not enforce this, so this test reads every import statement (also those inside
functions and under ``TYPE_CHECKING``) with ``ast``, without importing anything.

Ranks, lowest first; a module may import its own group and lower ranks only:

0. ``sagachain.core``, ``sagachain.errors``, ``sagachain.analysis`` and the
   ``sagachain`` facade itself (its ``__init__`` stays light);
1. ``runtimes``;
2. ``shards``;
3. ``sagachain.world`` (genesis, recipes, workloads) and, beside it,
   ``sagachain.audit`` (reads chains with core and shards);
4. the drivers: ``sagachain.sim`` and ``node``;
5. the commands: ``sagachain.cli`` and every other module of ``sagachain``
   (``cli_*``, the clients, the sweep).

Groups of one rank are independent: ``sagachain.sim`` and ``node`` never
import each other, nor do ``sagachain.world`` and ``sagachain.audit``. And a
command module imports one driver at most: ``sagachain.mail_client`` asks a
node, so the mail scripts and gas it shares with ``sagachain.sim.mail`` live
in ``sagachain.core.mail_calls``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sagachain", "shards", "runtimes", "node")

# (group, rank): the longest matching prefix of a module's dotted name decides. A module of
# sagachain that no prefix names is a command: a new lower package must be added here.
FACADE = ("core", 0)  # the sagachain package itself: only __version__
GROUPS: dict[str, tuple[str, int]] = {
    "sagachain.core": ("core", 0),
    "sagachain.errors": ("core", 0),
    "sagachain.analysis": ("core", 0),
    "runtimes": ("runtimes", 1),
    "shards": ("shards", 2),
    "sagachain.world": ("world", 3),
    "sagachain.audit": ("audit", 3),
    "sagachain.sim": ("sim", 4),
    "node": ("node", 4),
}
COMMANDS = ("commands", 5)  # any other module of sagachain: sagachain.cli, cli_*, clients, sweep
DRIVERS = ("sim", "node")


@dataclass(frozen=True)
class Import:
    where: str  # file:line
    importer: str
    imported: str


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    """A module or a package of the project (``shards`` is a namespace package: no ``__init__``)."""
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or base.is_dir()


def group_of(module: str) -> tuple[str, int] | None:
    """The layer of a project module, None for anything outside the project (stdlib, trio...)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if module == "sagachain":
        return FACADE
    for end in range(len(parts), 0, -1):
        found = GROUPS.get(".".join(parts[:end]))
        if found is not None:
            return found
    return COMMANDS


def imports_in(source: str, file: str, importer: str, package: str) -> list[Import]:
    """Every module ``source`` imports, anywhere in it. ``from pkg import name`` counts as
    importing ``pkg.name`` when that is a module (``from sagachain import sim`` imports the simulator)."""
    found = []
    for node in ast.walk(ast.parse(source, file)):
        if isinstance(node, ast.Import):
            found += [Import(f"{file}:{node.lineno}", importer, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append(Import(f"{file}:{node.lineno}", importer, child if is_module(child) else base))
    return sorted(found, key=lambda imp: int(imp.where.rpartition(":")[2]))


def imports_of(path: Path) -> list[Import]:
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    return imports_in(path.read_text(), str(path.relative_to(ROOT)), importer, package)


def crossings(imports: list[Import]) -> list[str]:
    """``file:line: a imports b`` for every import of a higher layer or of a sibling group."""
    bad: list[str] = []
    for imp in imports:
        mine, theirs = group_of(imp.importer), group_of(imp.imported)
        if mine is None or theirs is None or mine[0] == theirs[0] or theirs[1] < mine[1]:
            continue
        line = f"{imp.where}: {imp.importer} ({mine[0]}, rank {mine[1]}) imports {imp.imported} ({theirs[0]}, rank {theirs[1]})"
        if line not in bad:  # ``from m import a, b`` is one crossing
            bad.append(line)
    return bad


def project_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_module_imports_a_higher_layer_or_a_sibling_driver() -> None:
    bad = crossings([imp for path in project_files() for imp in imports_of(path)])
    assert not bad, "imports that cross the layers of ARCHITECTURE.md:\n" + "\n".join(bad)


def drivers_used(imports: list[Import]) -> dict[str, dict[str, str]]:
    """Command module -> driver group -> the first ``file:line`` importing it."""
    used: dict[str, dict[str, str]] = {}
    for imp in imports:
        theirs = group_of(imp.imported)
        if group_of(imp.importer) == COMMANDS and theirs is not None and theirs[0] in DRIVERS:
            used.setdefault(imp.importer, {}).setdefault(theirs[0], imp.where)
    return used


def test_no_command_module_imports_both_drivers() -> None:
    """A command module talks to a node or runs a simulation, not both: what a node's client shares
    with the simulator (mail and roster scripts and gas) lives below both, in ``sagachain.core``."""
    both = {module: where for module, where in drivers_used([imp for path in project_files() for imp in imports_of(path)]).items() if len(where) > 1}
    assert not both, "command modules importing both drivers: " + "; ".join(f"{m} ({', '.join(w.values())})" for m, w in both.items())


def test_the_checker_sees_every_kind_of_import() -> None:
    """A crossing inside a function, behind ``from pkg import module`` or a relative import is found."""
    source = "def later():\n    from sagachain import sim\n    from ..sim import runner\n    import sagachain.cli\n    from node.client import Client\n"
    bad = crossings(imports_in(source, "probe.py", "sagachain.world.probe", "sagachain.world"))
    assert [line.split(": ")[0] for line in bad] == ["probe.py:2", "probe.py:3", "probe.py:4", "probe.py:5"]
    assert [line.split(" imports ")[1].split(" ")[0] for line in bad] == ["sagachain.sim", "sagachain.sim.runner", "sagachain.cli", "node.client"]
    allowed = "from shards.enclave_store import EnclaveStore\nfrom sagachain import __version__\nfrom . import declarations\n"
    assert crossings(imports_in(allowed, "probe.py", "sagachain.world.probe", "sagachain.world")) == []
    assert crossings(imports_in("import sagachain.sim.world\n", "probe.py", "node.probe", "node")) != []


def test_every_layer_names_a_package_or_module_of_the_project() -> None:
    """A renamed package would otherwise drop out of the check silently (its modules becoming commands)."""
    assert [prefix for prefix in GROUPS if not is_module(prefix)] == []
    assert group_of("trio") is None and group_of("sagachain") == FACADE and group_of("sagachain.world.build") == ("world", 3)
    assert group_of("node.devnet") == ("node", 4) and group_of("sagachain.cli_run") == COMMANDS and group_of("sagachain.sim.runner") == ("sim", 4)
