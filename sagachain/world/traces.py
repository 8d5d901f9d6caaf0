"""Workload traces: transactions read from and written to CSV files, exactly as written.

Apart from the generators of ``sagachain.world.workloads`` because a trace
draws nothing from the seed: it is file input and output, checked row by row,
with errors that name the file and the line. Like the generators it adds to
``Declarations`` only, below both drivers. The format is in docs/WORKLOADS.md.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from sagachain.errors import InputError
from sagachain.world.declarations import Declarations, TxDecl

TRACE_COLUMNS = ("at_ms", "sender", "script", "accounts", "payer", "gas_limit")
_REQUIRED_COLUMNS = ("at_ms", "sender", "script")


def replay_trace(s: Declarations, path: str | Path) -> list[TxDecl]:
    """Add every transaction of a CSV trace file to ``s``, exactly as written.

    A trace makes a workload that came from somewhere else (a real ledger's
    history, another tool, a hand-edited file) replayable under any seed.
    The header row names the columns: ``at_ms``, ``sender`` and ``script``
    are required, ``accounts``, ``payer`` and ``gas_limit`` optional (as
    columns and as cells). ``accounts`` is ``alias=name;alias=name``. Every
    account must already be declared in ``s``. Errors name the file and the
    line where the bad row starts.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as source:
            reader = csv.reader(source)
            header = _check_header(path, next(reader, []))
            added = []
            line = reader.line_num + 1  # where the next row starts: a quoted script may span lines
            for row in reader:
                if any(cell.strip() for cell in row):
                    added.append(_trace_row(s, path, line, header, row))
                line = reader.line_num + 1
    except OSError as exc:
        raise InputError(f"cannot read trace {path}: {exc.strerror}; check the path given to replay_trace") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV trace ({exc}); save it as UTF-8 CSV") from None
    return added


def write_trace(path: str | Path, txs: Sequence[TxDecl]) -> None:
    """Write ``txs`` as a CSV trace that :func:`replay_trace` reads back unchanged.

    Exporting a generated workload lets it be inspected, edited, or run
    against a scenario built differently without re-deriving it from a seed.
    """
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(TRACE_COLUMNS)
        for tx in txs:
            aliases = ";".join(f"{alias}={name}" for alias, name in tx.accounts.items())
            writer.writerow([tx.at, tx.sender, tx.script, aliases, tx.payer, tx.gas_limit])



def _check_header(path: Path, header: list[str]) -> list[str]:
    """The header's column names, after checking them: a misspelt column would otherwise be silently ignored."""
    columns = [c.strip() for c in header]
    unknown = [c for c in columns if c not in TRACE_COLUMNS]
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if unknown or missing or len(set(columns)) != len(columns):
        raise InputError(
            f"{path}:1: header {','.join(columns)!r} must name each column at most once, from {','.join(TRACE_COLUMNS)}, "
            f"including {','.join(_REQUIRED_COLUMNS)}" + (f"; unknown: {unknown}" if unknown else "") + (f"; missing: {missing}" if missing else "")
        )
    return columns


def _trace_row(s: Declarations, path: Path, line: int, header: list[str], row: list[str]) -> TxDecl:
    where = f"{path}:{line}"
    if len(row) != len(header):
        raise InputError(f"{where}: {len(row)} cells for {len(header)} columns ({','.join(header)}); quote cells that contain commas")
    cells = dict(zip(header, row))

    def known(name: str, column: str) -> str:
        if name not in s.accounts:
            raise InputError(f"{where}: {column} {name!r} is not an account of the scenario; declare it before replay_trace")
        return name

    at = _integer(where, "at_ms", cells["at_ms"])
    if at < 0:
        raise InputError(f"{where}: at_ms {at} must be >= 0 (virtual ms from the start of the run)")
    sender = known(cells["sender"].strip(), "sender")
    aliases: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in cells.get("accounts", "").split(";"))):
        alias, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or not alias.isidentifier() or alias in aliases:
            raise InputError(f"{where}: accounts entry {pair!r} must be alias=name with a new identifier alias, entries separated by ;")
        aliases[alias] = known(name, "account")
    payer = cells.get("payer", "").strip()
    gas_cell = cells.get("gas_limit", "").strip()
    gas_limit = _integer(where, "gas_limit", gas_cell) if gas_cell else 20_000
    if gas_limit < 1:
        raise InputError(f"{where}: gas_limit {gas_limit} must be >= 1")
    s.transaction(at, sender, cells["script"], aliases, payer=known(payer, "payer") if payer else None, gas_limit=gas_limit)
    return s.txs[-1]


def _integer(where: str, column: str, cell: str) -> int:
    try:
        return int(cell.strip())
    except ValueError:
        raise InputError(f"{where}: {column} {cell!r} is not an integer; write whole virtual milliseconds / gas units") from None
