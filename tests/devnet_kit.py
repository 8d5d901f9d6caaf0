"""What the real-node tests share: finding a devnet's node, reading its log, waiting on it, and
gathering every public byte a run left behind for the canary scans (MEM-4, MBX-1)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.config import DATABASE_FILE
from node.storage import NodeStore


def node_named(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in record["nodes"] if n["name"] == name)


def node_log(root: Path, node: dict[str, Any]) -> str:
    return (root / node["dir"] / "node.log").read_text(errors="replace")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def public_bytes(root: Path, record: dict[str, Any], scratch: Path, seen: dict[str, bytes]) -> dict[str, bytes]:
    """``seen`` (events, metrics, ...) plus every node's database file, log and output, and the
    chain file exported from each node's store into ``scratch``: all a non-member could read."""
    public = dict(seen)
    for node in record["nodes"]:
        directory = root / node["dir"]
        for path in sorted(directory.iterdir()):
            if path.name.startswith(("node.sqlite", "node.log", "node.out")):
                public[str(path.relative_to(root))] = path.read_bytes()
        exported = scratch / f"{node['dir'].replace('/', '_')}.sgc"
        with NodeStore.open(directory / DATABASE_FILE) as store:
            store.export_chain(exported)
        public[exported.name] = exported.read_bytes()
    return public
