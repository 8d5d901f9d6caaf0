"""A node's data directory: its key, its one TOML config file, its one SQLite file.

``sagachain node init DIR`` makes the directory; everything the node needs
later is in it, so an operator backs up, moves or inspects a node by its
directory alone:

    DIR/node.key      the Ed25519 seed, hex, file mode 0600 (refused if others can read it)
    DIR/node.key.previous  seeds replaced by key rotations, oldest first (MEM-5); the node's id
                      stays the one of its first key, and old epochs open with old seeds (MEM-3)
    DIR/node.toml     the configuration (below)
    DIR/node.sqlite   blocks, owned state, pending transactions, sealed enclave state

The config names the chain (its genesis file), where the node listens, its
peers (address and pinned node key, MEM-5), the shards whose committees it
serves, and the enclaves it is a member of. One setting exists for tests
only: ``lie`` makes the node a byzantine enclave proposer (``shards.lies``),
so that a devnet can show its honest members refusing what it proposes.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from sagachain.core.keys import KeyPair, hex32
from sagachain.errors import InputError
from shards.lies import LIES

KEY_FILE = "node.key"
PREVIOUS_KEYS_FILE = "node.key.previous"  # seeds a key rotation replaced, oldest first (``sagachain enclave rotate-key``)
CONFIG_FILE = "node.toml"
DATABASE_FILE = "node.sqlite"
SEED_SIZE = 32


@dataclass(frozen=True)
class Peer:
    """Another node: where to reach it and the node key it must present (pinned, MEM-5).

    Without ``node_key`` the key is trusted on first contact and pinned from then on."""

    address: str  # host:port
    node_key: str = ""  # Ed25519 public key, hex; empty: pin on first contact


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen: str = "127.0.0.1:0"  # host:port; port 0 picks a free one
    genesis: str = ""  # path of the chain's genesis (a chain file holding at least the genesis)
    shards: tuple[str, ...] = ()  # shards whose committee this node serves
    enclaves: tuple[str, ...] = ()  # enclaves this node is a member of
    peers: tuple[Peer, ...] = field(default_factory=tuple)
    metrics: str = ""  # host:port for Prometheus metrics over HTTP; empty: off
    lie: str = ""  # for tests only: tamper own enclave proposals this way (a kind of ``shards.lies``); empty: honest

    def __post_init__(self) -> None:
        if self.lie and self.lie not in LIES:
            raise InputError(f"node {self.name}: `lie` must be one of {sorted(LIES)} (a test fault), or left out; got {self.lie!r}")

    def to_toml(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["shards"] = list(self.shards)
        data["enclaves"] = list(self.enclaves)
        data["peers"] = [asdict(p) for p in self.peers]
        if not self.lie:
            del data["lie"]
        return tomli_w.dumps(data)

    @classmethod
    def from_toml(cls, text: str, where: str) -> NodeConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{where} is not valid TOML ({exc}); fix the line it names") from None
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
        if not isinstance(data.get("name"), str) or not data["name"]:
            raise InputError(f"{where}: `name` must be a non-empty string")
        try:
            peers = tuple(Peer(address=str(p["address"]), node_key=str(p.get("node_key", ""))) for p in data.get("peers", []))
        except (KeyError, TypeError, AttributeError):
            raise InputError(f"{where}: each [[peers]] entry needs an `address` (and may pin a `node_key`)") from None
        for peer in peers:
            _check_address(peer.address, where)
            if peer.node_key:
                hex32(peer.node_key, f"{where}: node key", "an Ed25519 public key")
        config = cls(
            name=data["name"],
            listen=str(data.get("listen", "127.0.0.1:0")),
            genesis=str(data.get("genesis", "")),
            shards=tuple(str(s) for s in data.get("shards", [])),
            enclaves=tuple(str(e) for e in data.get("enclaves", [])),
            peers=peers,
            metrics=str(data.get("metrics", "")),
            lie=str(data.get("lie", "")),
        )
        _check_address(config.listen, where)
        if config.metrics:
            _check_address(config.metrics, where)
        return config


def _check_address(address: str, where: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"{where}: address {address!r} must be host:port, e.g. 127.0.0.1:7100")


def init_node(directory: Path, config: NodeConfig, seed: bytes | None = None) -> KeyPair:
    """Create ``directory`` with a fresh key (or ``seed``), the config file and, when the
    config names a genesis, the database holding it and the state of the node's shards.

    Refuses a directory that already holds a node: an operator never loses a
    key by re-running init.
    """
    if (directory / KEY_FILE).exists() or (directory / CONFIG_FILE).exists():
        raise InputError(f"{directory} already holds a node; pick another directory or remove it first")
    directory.mkdir(parents=True, exist_ok=True)
    seed = seed if seed is not None else os.urandom(SEED_SIZE)
    key_path = directory / KEY_FILE
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(seed.hex() + "\n")
    (directory / CONFIG_FILE).write_text(config.to_toml())
    if config.genesis:
        from node.storage import NodeStore
        from sagachain.core.chainfile import read_chain

        genesis = read_chain(Path(config.genesis)).genesis
        NodeStore.create(directory / DATABASE_FILE, genesis, shards=config.shards).close()
    return KeyPair(seed)


def load_key(directory: Path) -> KeyPair:
    """The node's key; refused when the file is missing, malformed, or readable by others."""
    path = directory / KEY_FILE
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise InputError(f"cannot read the node key {path}: {exc.strerror}; run `sagachain node init {directory}` first") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"node key {path} is readable by others (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    return KeyPair(hex32(text, f"node key file {path}: its content", "an Ed25519 seed"))


def load_previous_keys(directory: Path) -> list[KeyPair]:
    """The node keys a rotation replaced, oldest first; none when the key never rotated."""
    path = directory / PREVIOUS_KEYS_FILE
    if not path.exists():
        return []
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"previous node keys {path} are readable by others; run `chmod 600 {path}`")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [KeyPair(hex32(line, f"{path} line {i + 1}", "an Ed25519 seed")) for i, line in enumerate(lines)]


def load_config(directory: Path) -> NodeConfig:
    path = directory / CONFIG_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}; run `sagachain node init {directory}` first") from None
    return NodeConfig.from_toml(text, str(path))
