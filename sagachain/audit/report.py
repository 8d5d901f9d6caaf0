"""Printing an audit report, and its machine-readable JSON form.

JSON report schema (``sagachain audit CHAIN --json REPORT.json``), version 1::

    {
      "version": 1,                        # this schema's version
      "chain": {
        "id": "quickstart-1",              # the genesis chain id
        "genesis": "<hex>",                # genesis hash
        "digest": "<hex>",                 # the end record's stored BLAKE3 digest (FMT-1)
        "digest_ok": true,                 # whether it matches the file's bytes
        "blocks": 123, "transactions": 456, "shards": 4
      },
      "verdict": "well-formed" | "violations",
      "rules": [                           # every rule of the catalogue, FMT-1, and TX-6 when
        {                                  # enclave states were given
          "id": "TX-5", "text": "what it checks",
          "blocks": 123,                   # blocks it checked
          "txs": 456,                      # transaction entries it checked
          "violations": 0,
          "genesis": false,                # it (also) checked the genesis record
          "note": ""                       # what part was skipped and why, if any
        }, ...
      ],
      "violations_total": 0,
      "violations": [                      # at most --max-violations of them, in file order
        {"rule": "SH-1", "shard": "P0", "height": 7, "entry": 2 | null,
         "tx": "<hex tx id>" | null, "reason": "one line"}, ...
      ],
      "refused": [                         # blocks that break a rule: not applied, their shard halts
        {"shard": "P0", "height": 7, "offset": 30112, "rules": ["L2L-1"]}, ...
      ],
      "ignored": [                         # blocks the chain does not honour (MINT-4, LIFE-1, a halted shard)
        {"shard": "acme/0", "height": 9, "offset": 40213, "reason": "..."}, ...
      ],
      "enclaves_replayed": [               # TX-6 re-execution, one per enclave state given
        {"enclave": "acme", "blocks": 20, "txs": 33, "rollbacks": 0, "violations": 0}, ...
      ],
      "enclave_status": {"acme": "active" | "terminated at S#H: why" | "broken-away at S#H: why"},
      "skipped": ["TX-2: open transactions not re-executed: ..."]
    }

Byte strings are lowercase hex. The exit status of the command is 0 for
``well-formed``, 1 for ``violations``, 2 when the input is not a readable chain
(or an enclave state or key file is unusable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sagachain.audit.auditor import AuditReport
from sagachain.core.rules import Violation

DEFAULT_SHOWN = 20


def violation_json(v: Violation) -> dict[str, Any]:
    return {
        "rule": v.rule,
        "shard": v.shard,
        "height": v.height,
        "entry": v.entry,
        "tx": v.tx.hex() if v.tx is not None else None,
        "reason": v.reason,
    }


def to_json(report: AuditReport, max_violations: int | None = None) -> dict[str, Any]:
    """The report as the JSON document described in the module docstring."""
    listed = report.violations if max_violations is None else report.violations[:max_violations]
    return {
        "version": report.version,
        "chain": {
            "id": report.chain_id,
            "genesis": report.genesis_hash.hex(),
            "digest": report.chain_digest.hex(),
            "digest_ok": report.digest_ok,
            "blocks": report.blocks,
            "transactions": report.txs,
            "shards": report.shards,
        },
        "verdict": report.verdict,
        "rules": [
            {"id": r.id, "text": r.text, "blocks": r.blocks, "txs": r.txs, "violations": r.violations, "genesis": r.genesis, "note": r.note}
            for r in report.rules
        ],
        "violations_total": len(report.violations),
        "violations": [violation_json(v) for v in listed],
        "refused": [{"shard": r.shard, "height": r.height, "offset": r.offset, "rules": list(r.rules)} for r in report.refused],
        "ignored": [{"shard": i.shard, "height": i.height, "offset": i.offset, "reason": i.reason} for i in report.ignored],
        "enclaves_replayed": [
            {"enclave": s.enclave, "blocks": s.blocks, "txs": s.txs, "rollbacks": s.rollbacks, "violations": s.violations}
            for s in report.enclaves_replayed
        ],
        "enclave_status": dict(report.enclave_status),
        "skipped": list(report.skipped),
    }


def write_json(report: AuditReport, path: Path, max_violations: int | None = None) -> None:
    path.write_text(json.dumps(to_json(report, max_violations), indent=2, sort_keys=False) + "\n")


def rules_table(report: AuditReport) -> Table:
    table = Table(title=f"audit of chain {report.chain_id}: {report.blocks} blocks, {report.txs} transactions, {report.shards} shards")
    table.add_column("rule", no_wrap=True)
    table.add_column("what it checks")
    table.add_column("blocks", justify="right")
    table.add_column("txs", justify="right")
    table.add_column("violations", justify="right")
    for row in report.rules:
        text = Text(row.text)
        if row.note:
            text.append(f"\n(skipped: {row.note})", style="yellow")
        blocks = f"{row.blocks}" + (" +genesis" if row.genesis else "")
        style = "bold red" if row.violations else "green"
        table.add_row(row.id, text, blocks, str(row.txs), Text(str(row.violations), style=style))
    return table


def violations_table(report: AuditReport, shown: int) -> Table:
    table = Table(title=f"first {min(shown, len(report.violations))} of {len(report.violations)} violations")
    table.add_column("rule", no_wrap=True, style="red")
    table.add_column("shard", no_wrap=True)
    table.add_column("height", justify="right")
    table.add_column("entry", justify="right")
    table.add_column("tx", no_wrap=True)
    table.add_column("reason")
    for v in report.violations[:shown]:
        table.add_row(
            v.rule,
            v.shard if v.shard is not None else "(genesis)" if v.height is None else "",
            "" if v.height is None else str(v.height),
            "" if v.entry is None else str(v.entry),
            v.tx.hex()[:12] if v.tx is not None else "",
            v.reason.splitlines()[0] if v.reason else "",
        )
    return table


def refused_table(report: AuditReport, shown: int) -> Table:
    table = Table(title=f"{len(report.refused)} refused blocks (they break a rule: not applied, their shard halts)")
    table.add_column("shard", no_wrap=True)
    table.add_column("height", justify="right")
    table.add_column("rules")
    for item in report.refused[:shown]:
        table.add_row(item.shard, str(item.height), ", ".join(item.rules))
    if len(report.refused) > shown:
        table.add_row("...", "", f"{len(report.refused) - shown} more (all are in the --json report)")
    return table


def ignored_table(report: AuditReport, shown: int) -> Table:
    table = Table(title=f"{len(report.ignored)} ignored blocks (not honoured by the chain: MINT-4, LIFE-1, a halted shard)")
    table.add_column("shard", no_wrap=True)
    table.add_column("height", justify="right")
    table.add_column("why")
    for item in report.ignored[:shown]:
        table.add_row(item.shard, str(item.height), item.reason)
    if len(report.ignored) > shown:
        table.add_row("...", "", f"{len(report.ignored) - shown} more (all are in the --json report)")
    return table


def print_report(report: AuditReport, console: Console, max_violations: int = DEFAULT_SHOWN) -> None:
    """The human form: rules table, first violations, ignored blocks, enclaves, verdict."""
    console.print(rules_table(report))
    if report.violations:
        console.print(violations_table(report, max_violations))
    if report.refused:
        console.print(refused_table(report, max(max_violations, DEFAULT_SHOWN)))
    if report.ignored:
        console.print(ignored_table(report, max(max_violations, DEFAULT_SHOWN)))
    else:
        console.print("ignored blocks: none")
    for stats in report.enclaves_replayed:
        console.print(
            f"enclave [bold]{stats.enclave}[/bold] re-executed (TX-6): {stats.blocks} blocks, {stats.txs} transactions, "
            f"{stats.rollbacks} rollbacks, {stats.violations} violations"
        )
    for enclave, status in sorted(report.enclave_status.items()):
        if status != "active":
            console.print(f"enclave [bold]{enclave}[/bold]: {status}")
    for note in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {note}")
    digest = report.chain_digest.hex()[:16]
    if report.ok:
        console.print(f"[bold green]well-formed[/bold green]: no violation of any checked rule (chain digest {digest}...)")
    else:
        rules = sorted({v.rule for v in report.violations})
        console.print(f"[bold red]{len(report.violations)} violations[/bold red] of {', '.join(rules)} (chain digest {digest}...)")
