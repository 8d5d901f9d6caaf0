"""A local devnet: every committee member of a small genesis as its own node process.

The devnet is how the real node is tried out as a whole, on one machine,
before any wide-area set-up: the same genesis, keys and enclave state the
simulator would build for the same declarations (``sagachain.world``, the
world builder below both drivers, so the node never imports the simulator),
turned into one data directory per node and one ``sagachain node start``
process each, all on 127.0.0.1.

Layout of a devnet directory ``DIR`` (see docs/DEVNET.md):

    DIR/devnet.json             what was made: spec, nodes (address, key, pid), accounts (ids, seeds)
    DIR/genesis.sgc             the genesis as a chain file (no blocks)
    DIR/enclaves/E.sealed, E.key  the enclave's initial state and epoch 1's key, for ``sagachain audit`` (TX-6)
    DIR/nonces.json             the last nonce ``devnet load`` signed per account
    DIR/nodes/<node>/           a node's data directory (``node.config``), plus
        enclave-E.genesis       for a founding member of enclave E: the initial state, sealed
                                under epoch 1's key (each member derives it, MEM-3)
        node.out                the process's stdout and stderr

Planning (:func:`plan_devnet`) is pure apart from the free-port probe;
writing (:func:`write_devnet`) only makes files; :func:`start_nodes`,
:func:`wait_ready` and :func:`stop_devnet` are the process management.
Keys here are derived from the seed and the accounts' seeds are written in
the clear: a devnet is for development, never for value.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blake3 import blake3

from node.config import NodeConfig, Peer, init_node
from sagachain.core.chainfile import write_chain
from sagachain.core.keys import KeyPair
from sagachain.core.roster import BURN_ON_READ
from sagachain.errors import InputError, SagaError
from sagachain.world.build import World, build_world
from sagachain.world.declarations import Declarations
from sagachain.world.recipes import people

RECORD_FILE = "devnet.json"
GENESIS_FILE = "genesis.sgc"
NONCES_FILE = "nonces.json"
NODES_DIR = "nodes"
READY_FILE = "node.ready"
OUTPUT_FILE = "node.out"
LOG_FILE = "node.log"
ENCLAVE = "E"
VAULT_CLASS = "Treasury"
OPERATOR_BALANCE = 10**9  # E.operator signs and pays for roster transactions (`sagachain enclave`), key material included
IDENTITY_PREFIX = "id"  # identities id0, id1, ...: mailbox owners (docs/CLIENT.md, `sagachain mailbox`)
IDENTITY_DEVICES = 2
IDENTITY_BALANCE = 1_000_000
RECORD_VERSION = 1
NONCE_SIZE = 24  # SecretBox nonce


def vault_class(enclave: str, name: str = VAULT_CLASS) -> str:
    """A private class with the two methods the simulator's ``mix`` workload calls by default:
    ``record`` (an enclave transaction) and ``payout`` (a mixed one, paying between public accounts)."""
    return f'''
class {name}(EnclaveAccount_{enclave}):
    ALLOW = {{"record": "any", "payout": "any"}}
    def record(self, amount):
        self.total = self.total + amount
        self.entries = self.entries + 1
    def payout(self, src, dst, amount):
        src.pay(dst, amount)
        self.paid = self.paid + amount
'''


@dataclass(frozen=True)
class DevnetSpec:
    """The shape of a devnet: what ``devnet up``'s options say."""

    shards: int = 1
    enclave_shards: int = 1
    nodes_per_shard: int = 4
    accounts: int = 8
    enclave_accounts: int = 2
    seed: int = 1
    identities: int = 0
    spare_nodes: int = 0  # nodes on no committee, following enclave E: candidates to apply (MEM-2)

    def check(self) -> None:
        """Refuse shapes that cannot make a working devnet, saying which option to change."""
        if self.shards < 1:
            raise InputError(f"--shards {self.shards}: a chain needs at least one public shard; pass --shards 1 or more")
        if self.enclave_shards < 0:
            raise InputError(f"--enclave-shards {self.enclave_shards} must be 0 or more")
        if self.nodes_per_shard < 1:
            raise InputError(f"--nodes-per-shard {self.nodes_per_shard}: a committee needs at least one node (4 tolerate one fault, SH-1)")
        if self.accounts < 2:
            raise InputError(f"--accounts {self.accounts}: transfers need at least two public accounts; pass --accounts 2 or more")
        if self.spare_nodes < 0:
            raise InputError(f"--spare-nodes {self.spare_nodes} must be 0 or more")
        if self.enclave_accounts < 0:
            raise InputError(f"--enclave-accounts {self.enclave_accounts} must be 0 or more")
        if self.enclave_accounts and not self.enclave_shards:
            raise InputError(f"--enclave-accounts {self.enclave_accounts} needs an enclave: pass --enclave-shards 1 or more, or --enclave-accounts 0")
        if self.identities < 0:
            raise InputError(f"--identities {self.identities} must be 0 or more (MBX-1)")


def devnet_declarations(spec: DevnetSpec) -> Declarations:
    """The devnet's declarations, as a simulator scenario would make them: public shards P0..,
    enclave E with shards E/0.., funded people user0.., and vaults vault0.. of the ``Treasury``
    class spread over the enclave's shards, and identities id0.. with two devices each
    (``id0.dev0``, ``id0.dev1``) and a burn-on-read mailbox, registered (MBX-1, REG-1).
    ``devnet load`` rebuilds the same declarations for its workload."""
    spec.check()
    s = Declarations(spec.seed, name="devnet")
    s.public_shards(spec.shards, nodes=spec.nodes_per_shard)
    people(s, spec.accounts)
    if spec.enclave_shards:
        shards = s.enclave(ENCLAVE, shards=spec.enclave_shards, nodes=spec.nodes_per_shard, operator_balance=OPERATOR_BALANCE)
        admin = s.enclave_account(ENCLAVE, f"{ENCLAVE}_admin")
        s.private_class(ENCLAVE, VAULT_CLASS, vault_class(ENCLAVE), owner=admin)
        for i in range(spec.enclave_accounts):
            s.enclave_account(ENCLAVE, f"vault{i}", cls=VAULT_CLASS, shard=shards[i % len(shards)], total=0, entries=0, paid=0)
    for i in range(spec.identities):  # funded like the people: `devnet load` may pick them as senders too
        s.identity(f"{IDENTITY_PREFIX}{i}", devices=IDENTITY_DEVICES, balance=IDENTITY_BALANCE, retention=BURN_ON_READ)
    return s


@dataclass(frozen=True)
class NodePlan:
    """One node process: its identity from the genesis, where it listens, what it serves."""

    name: str
    dir: str  # relative to the devnet directory
    listen: str
    metrics: str
    node_key: str  # hex of the Ed25519 public key (what peers pin, MEM-5)
    seed: bytes = field(repr=False)
    shards: tuple[str, ...]
    enclaves: tuple[str, ...]


@dataclass(frozen=True)
class AccountPlan:
    name: str
    id: str  # hex
    seed: str  # hex; a devnet's keys are not secret
    enclave: str | None
    shard: str  # where the genesis places it


@dataclass
class DevnetPlan:
    spec: DevnetSpec
    world: World[Declarations]
    nodes: list[NodePlan]
    accounts: list[AccountPlan]

    @property
    def enclaves(self) -> list[str]:
        return plan_enclaves(self.world)


def node_dir_name(name: str) -> str:
    """A node name as a directory name: enclave shard ids hold a slash (``E/0-n1``)."""
    return name.replace("/", "_")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now (all held open until every one is
    picked, so none is handed out twice). Another program may still take one before the node
    binds it; ``--base-port`` avoids the probe altogether."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [s.getsockname()[1] for s in held]
    finally:
        for sock in held:
            sock.close()


def plan_ports(count: int, base_port: int | None, metrics: bool) -> tuple[list[int], list[int]]:
    """Listen ports and metrics ports: ``base_port + i`` and ``base_port + count + i``, or free ones."""
    wanted = count * (2 if metrics else 1)
    if base_port is None:
        ports = free_ports(wanted)
    else:
        if base_port < 1024 or base_port + wanted - 1 > 65535:
            raise InputError(f"--base-port {base_port}: the devnet needs ports {base_port}..{base_port + wanted - 1}, "
                             "which must lie within 1024..65535; pick another base port")
        ports = list(range(base_port, base_port + wanted))
    return ports[:count], ports[count:] if metrics else []


def plan_devnet(spec: DevnetSpec, base_port: int | None = None, metrics: bool = True) -> DevnetPlan:
    """Everything ``devnet up`` will write, from the spec: one node per committee seat of the genesis."""
    world = build_world(devnet_declarations(spec))
    genesis = world.genesis
    records = {n.id: n for n in genesis.nodes}
    seats = [(shard, member) for shard in genesis.shards for member in shard.committee]
    listen, metric = plan_ports(len(seats) + spec.spare_nodes, base_port, metrics)
    nodes = []
    for i, (shard, member) in enumerate(seats):
        key = world.node_keys[member]
        if not isinstance(key, KeyPair):
            raise InputError("a devnet needs real Ed25519 keys; its declarations must not use modelled crypto")
        record = records[member]
        nodes.append(NodePlan(
            name=record.name,
            dir=f"{NODES_DIR}/{node_dir_name(record.name)}",
            listen=f"127.0.0.1:{listen[i]}",
            metrics=f"127.0.0.1:{metric[i]}" if metric else "",
            node_key=key.public.hex(),
            seed=key.seed,
            shards=(shard.id,),
            enclaves=(shard.enclave,) if shard.enclave else (),
        ))
    for i in range(spec.spare_nodes):  # keys the genesis does not know: they join through the roster
        key = KeyPair.derive(genesis.chain_id, "node", f"spare{i}")
        at = len(seats) + i
        nodes.append(NodePlan(
            name=f"spare{i}", dir=f"{NODES_DIR}/spare{i}", listen=f"127.0.0.1:{listen[at]}",
            metrics=f"127.0.0.1:{metric[at]}" if metric else "", node_key=key.public.hex(), seed=key.seed,
            shards=(), enclaves=tuple(plan_enclaves(world)),
        ))
    accounts = []
    for record in genesis.accounts:
        key = world.account_keys.get(record.id)
        if key is None:
            continue  # rosters, mailboxes and the registry act only through their native methods: no key
        accounts.append(AccountPlan(record.name, record.id.hex(), key.seed.hex(), record.enclave, record.shard))
    return DevnetPlan(spec, world, nodes, accounts)


def plan_enclaves(world: World) -> list[str]:
    return [e.id for e in world.genesis.enclaves]


def enclave_nonce(enclave: str) -> bytes:
    """The nonce the devnet seals an enclave's initial state with: fixed per enclave, so the
    same devnet spec writes the same bytes (the key is per chain, so it is never reused across chains)."""
    return blake3(f"sagachain-devnet-enclave-genesis/{enclave}".encode()).digest()[:NONCE_SIZE]


def node_config(plan: DevnetPlan, node: NodePlan, root: Path) -> NodeConfig:
    """The node.toml of ``node``: every other node is a peer, with its key pinned (MEM-5)."""
    peers = tuple(Peer(other.listen, other.node_key) for other in plan.nodes if other.name != node.name)
    return NodeConfig(
        name=node.name,
        listen=node.listen,
        genesis=str((root / GENESIS_FILE).resolve()),
        shards=node.shards,
        enclaves=node.enclaves,
        peers=peers,
        metrics=node.metrics,
    )


def _write_private(path: Path, text: str) -> None:
    """A secret file, mode 0600 from the moment it exists."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)


def write_devnet(plan: DevnetPlan, root: Path) -> dict[str, Any]:
    """Write the genesis, each node's data directory and enclave files, and devnet.json; return the record."""
    root.mkdir(parents=True, exist_ok=True)
    world = plan.world
    write_chain(root / GENESIS_FILE, world.genesis, [])
    sealed = {e: world.stores[e].seal(world.enclave_keys[e], enclave_nonce(e)) for e in plan.enclaves}
    if plan.enclaves:
        (root / "enclaves").mkdir(exist_ok=True)
    for enclave in plan.enclaves:
        (root / "enclaves" / f"{enclave}.sealed").write_bytes(sealed[enclave])
        _write_private(root / "enclaves" / f"{enclave}.key", world.enclave_keys[enclave].hex() + "\n")
    for node in plan.nodes:
        directory = root / node.dir
        init_node(directory, node_config(plan, node, root), seed=node.seed)
        for enclave in node.enclaves if node.shards else ():  # founders: sealed under epoch 1's key, which each derives
            (directory / f"enclave-{enclave}.genesis").write_bytes(sealed[enclave])
    record = {
        "version": RECORD_VERSION,
        "spec": asdict(plan.spec),
        "chain_id": world.genesis.chain_id,
        "genesis": GENESIS_FILE,
        "genesis_hash": world.genesis.hash.hex(),
        "enclaves": plan.enclaves,
        "nodes": [
            {"name": n.name, "dir": n.dir, "address": n.listen, "metrics": n.metrics, "node_key": n.node_key,
             "shards": list(n.shards), "enclaves": list(n.enclaves), "pid": None}
            for n in plan.nodes
        ],
        "accounts": [asdict(a) for a in plan.accounts],
    }
    save_record(root, record)
    return record


# -- the record --------------------------------------------------------------------------


def save_record(root: Path, record: dict[str, Any]) -> None:
    """Replace devnet.json atomically: ``down`` must never find half a record after a crash of ``up``."""
    partial = root / (RECORD_FILE + ".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, root / RECORD_FILE)


def _save_nodes(root: Path, record: dict[str, Any]) -> None:
    """Record what ``record`` says of its nodes, keeping the other nodes devnet.json lists: a
    caller may wait for some nodes only (one restarted by hand), and ``down`` must still find all."""
    try:
        stored = load_record(root)
    except InputError:
        save_record(root, record)
        return
    given = {n["name"]: n for n in record["nodes"]}
    listed = {n["name"] for n in stored["nodes"]}
    stored["nodes"] = [given.get(n["name"], n) for n in stored["nodes"]] + [n for n in record["nodes"] if n["name"] not in listed]
    save_record(root, stored)


def load_record(root: Path) -> dict[str, Any]:
    path = root / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: {root} holds no devnet; make one with `sagachain devnet up --dir {root}`") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} ({exc}); it is damaged: remove {root} and run `sagachain devnet up` again") from None
    missing = [k for k in ("version", "spec", "nodes", "accounts", "enclaves") if k not in record] if isinstance(record, dict) else ["(a JSON object)"]
    if missing:
        raise InputError(f"{path} is not a devnet record: it lacks {missing}; remove {root} and run `sagachain devnet up` again")
    if record["version"] != RECORD_VERSION:
        raise InputError(f"{path} is a devnet record of version {record['version']}; this sagachain reads version {RECORD_VERSION}")
    return record


def spec_of(record: dict[str, Any]) -> DevnetSpec:
    try:
        return DevnetSpec(**record["spec"])
    except TypeError as exc:
        raise InputError(f"devnet.json: its spec {record['spec']} does not fit this sagachain ({exc}); make the devnet again") from None


# -- processes -----------------------------------------------------------------------------


def pid_alive(pid: int | None, node_dir: Path | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, when ``node_dir`` is given and /proc can tell,
    is a node of that directory: a recorded pid may since have gone to another program."""
    if not pid:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child and has exited
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not one of ours
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        if stat.rpartition(")")[2].split()[0] == "Z":
            return False
        if node_dir is not None:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            return str(node_dir.resolve()).encode() in args
    except (OSError, IndexError):
        pass  # no /proc (macOS): trust the pid
    return True


def running_nodes(root: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded nodes whose process still runs."""
    return [n for n in record["nodes"] if pid_alive(n.get("pid"), root / n["dir"])]


def check_free(root: Path) -> None:
    """Refuse a directory that holds a running devnet, or anything that is not a devnet."""
    if (root / RECORD_FILE).exists():
        record = load_record(root)
        alive = running_nodes(root, record)
        if alive:
            names = ", ".join(f"{n['name']} (pid {n['pid']})" for n in alive)
            raise InputError(f"{root} holds a running devnet ({len(alive)} nodes: {names}); stop it first with `sagachain devnet down --dir {root}`")
        raise InputError(f"{root} holds a stopped devnet; pass --fresh to delete it and make a new one, or pick another --dir")
    if root.exists() and any(root.iterdir()):
        raise InputError(f"{root} exists and is not empty, and holds no devnet.json; pick an empty or new --dir")


def remove_stopped(root: Path) -> None:
    """Delete a stopped devnet (``up --fresh``): only what a devnet writes, and only if none of it runs."""
    record = load_record(root)
    alive = running_nodes(root, record)
    if alive:
        raise InputError(f"{root} holds a running devnet ({len(alive)} nodes); stop it first with `sagachain devnet down --dir {root}`")
    for name in (NODES_DIR, "enclaves"):
        shutil.rmtree(root / name, ignore_errors=True)
    for name in (GENESIS_FILE, NONCES_FILE, RECORD_FILE):
        (root / name).unlink(missing_ok=True)


def node_command(node_dir: Path) -> list[str]:
    """How a node process is started: this interpreter, so it runs in the same environment."""
    return [sys.executable, "-m", "sagachain", "node", "start", str(node_dir.resolve())]


def spawn_node(root: Path, node: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start one node in its own session (a Ctrl-C of the terminal does not reach it; ``down`` does)."""
    directory = root / node["dir"]
    (directory / READY_FILE).unlink(missing_ok=True)  # a stale one from a killed run would look ready
    with (directory / OUTPUT_FILE).open("ab") as out:
        return subprocess.Popen(node_command(directory), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=directory)


def start_nodes(root: Path, record: dict[str, Any]) -> dict[str, subprocess.Popen[bytes]]:
    """Spawn every node and record its pid at once, so ``down`` can stop them even if ``up`` fails later."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for node in record["nodes"]:
        procs[node["name"]] = spawn_node(root, node)
        node["pid"] = procs[node["name"]].pid
        _save_nodes(root, record)
    return procs


def read_ready(directory: Path) -> dict[str, Any] | None:
    """A node's node.ready, or None while it is missing or still being written."""
    try:
        data = json.loads((directory / READY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "address" in data else None


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ready(
    root: Path,
    record: dict[str, Any],
    procs: dict[str, subprocess.Popen[bytes]] | None = None,
    timeout: float = 30.0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Wait until every node has written node.ready (with its own pid), record their addresses.

    Fails fast, naming the node and its log, if a node process exits, and
    after ``timeout`` seconds for the ones still not ready.
    """
    waiting = {n["name"]: n for n in record["nodes"]}
    deadline = time.monotonic() + timeout
    while waiting:
        for name, node in list(waiting.items()):
            directory = root / node["dir"]
            ready = read_ready(directory)
            if ready is not None and ready.get("pid") == node["pid"]:
                node["address"] = str(ready["address"])
                node["metrics"] = str(ready.get("metrics") or "")
                del waiting[name]
                if on_ready is not None:
                    on_ready(name)
                continue
            proc = (procs or {}).get(name)
            code = proc.poll() if proc is not None else (None if pid_alive(node["pid"]) else "unknown")
            if code is not None:
                _save_nodes(root, record)
                raise InputError(f"node {name} exited (status {code}) before it was ready; see {directory / LOG_FILE} "
                                 f"and {directory / OUTPUT_FILE}:\n{_tail(directory / OUTPUT_FILE) or _tail(directory / LOG_FILE)}")
        if waiting and time.monotonic() > deadline:
            _save_nodes(root, record)
            names = ", ".join(sorted(waiting))
            first = root / next(iter(waiting.values()))["dir"]
            raise InputError(f"node(s) {names} not ready after {timeout:.0f} s (no {READY_FILE}); see {first / LOG_FILE} "
                             f"and {first / OUTPUT_FILE}, or raise --timeout")
        time.sleep(0.05)
    _save_nodes(root, record)


@dataclass(frozen=True)
class Stopped:
    """How one node ended under ``down``."""

    name: str
    pid: int | None
    how: str  # "terminated", "killed", "not running"


def stop_devnet(root: Path, timeout: float = 10.0, record: dict[str, Any] | None = None) -> list[Stopped]:
    """SIGTERM every running node, SIGKILL those still running after ``timeout``; clear the pids.

    Idempotent: nodes that are not running are reported as such and left alone.
    """
    record = record if record is not None else load_record(root)
    alive = {n["name"]: n for n in running_nodes(root, record)}
    for node in alive.values():
        try:
            os.kill(node["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(n["pid"]) for n in alive.values()):
        time.sleep(0.05)
    results = []
    for node in record["nodes"]:
        pid = node.get("pid")
        if node["name"] not in alive:
            results.append(Stopped(node["name"], pid, "not running"))
        elif pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(100):
                if not pid_alive(pid):
                    break
                time.sleep(0.02)
            results.append(Stopped(node["name"], pid, "killed"))
        else:
            results.append(Stopped(node["name"], pid, "terminated"))
        (root / node["dir"] / READY_FILE).unlink(missing_ok=True)
        node["pid"] = None
    save_record(root, record)
    return results


def up(root: Path, spec: DevnetSpec, base_port: int | None = None, metrics: bool = True, fresh: bool = False,
       timeout: float = 30.0, on_ready: Callable[[str], None] | None = None,
       on_planned: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Make and start a devnet in ``root``; on any failure, stop what was started and re-raise."""
    spec.check()
    if fresh and (root / RECORD_FILE).exists():
        remove_stopped(root)
    check_free(root)
    record = write_devnet(plan_devnet(spec, base_port, metrics), root)
    if on_planned is not None:
        on_planned(record)
    try:
        procs = start_nodes(root, record)
        wait_ready(root, record, procs, timeout, on_ready)
    except BaseException as exc:
        stop_devnet(root, timeout=5.0, record=record)
        if isinstance(exc, SagaError):
            raise InputError(f"{exc.message}\nthe devnet's other nodes were stopped; their files stay in {root}") from None
        raise
    return record
