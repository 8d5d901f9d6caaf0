"""``sagachain node``: create a node's data directory and inspect it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sagachain.errors import InputError, SagaError


@click.group("node")
def node() -> None:
    """Operate a SagaChain node: its key, its config file, its database.

    \b
    Example:
        sagachain node init nodes/n1 --name n1 --listen 127.0.0.1:7101 --shard P0
        sagachain node status nodes/n1
    """


@node.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", required=True, help="The node's name, as operators and logs call it.")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="host:port the node listens on.")
@click.option("--genesis", default="", help="Path of the chain's genesis (a chain file).")
@click.option("--shard", "shards", multiple=True, help="A shard whose committee this node serves; repeatable.")
@click.option("--enclave", "enclaves", multiple=True, help="An enclave this node is a member of; repeatable.")
@click.option("--peer", "peers", multiple=True, metavar="HOST:PORT[=NODEKEY]", help="A peer and its pinned node key (hex); without a key, the key it first presents is pinned (MEM-5); repeatable.")
@click.option("--metrics", default="", metavar="HOST:PORT", help="Serve Prometheus metrics here (port 0: any free port); default: off.")
def init(directory: Path, name: str, listen: str, genesis: str, shards: tuple[str, ...], enclaves: tuple[str, ...], peers: tuple[str, ...], metrics: str) -> None:
    """Create DIRECTORY with a new node key (mode 0600) and its config file node.toml.

    \b
    Example:
        sagachain node init nodes/n1 --name n1 --listen 127.0.0.1:7101 --shard P0 \\
            --peer 127.0.0.1:7102=3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29 \
            --peer 127.0.0.1:7103
    """
    from node.config import NodeConfig, Peer, init_node

    console = Console()
    try:
        parsed = []
        for spec in peers:
            address, _, key = spec.partition("=")
            parsed.append(Peer(address=address, node_key=key))
        config = NodeConfig(name=name, listen=listen, genesis=genesis, shards=shards, enclaves=enclaves, peers=tuple(parsed), metrics=metrics)
        NodeConfig.from_toml(config.to_toml(), "the options")  # the same checks a config file gets
        key = init_node(directory, config)
    except SagaError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(2) from None
    console.print(f"node {name} created in {directory}")
    console.print(f"node key (give it to peers to pin): {key.public.hex()}")


@node.command("start")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]), help="How much the node logs (to DIRECTORY/node.log and stderr).")
def start(directory: Path, log_level: str) -> None:
    """Run the node of DIRECTORY until interrupted (Ctrl-C or SIGTERM).

    It listens for peers and clients, serves its shards' committees, keeps
    its copy of the chain in DIRECTORY/node.sqlite, and serves Prometheus
    metrics if the config names a `metrics` address. Once it listens it writes
    DIRECTORY/node.ready (JSON: address, metrics, pid).

    \b
    Example:
        sagachain node start nodes/n1
    """
    from node.server import serve

    try:
        serve(directory, log_level)
    except SagaError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


@node.command("export")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
def export(directory: Path, out: Path) -> None:
    """Write the chain stored in DIRECTORY's node.sqlite to OUT as a chain file.

    The blocks come in the order they became final on this node; the file is
    what `sagachain audit` and `sagachain leakage` read, and can be sent to an
    auditor without the node's key or enclave state. Safe while the node runs.

    \b
    Example:
        sagachain node export nodes/n1 n1.sgc && sagachain audit n1.sgc
    """
    from node.config import DATABASE_FILE
    from node.storage import NodeStore

    try:
        with NodeStore.open(directory / DATABASE_FILE) as store:
            store.export_chain(out)
            count = len(store.blocks())
    except SagaError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(2) from None
    Console().print(f"{count} blocks written to {out}")


@node.command("status")
@click.argument("target", metavar="DIRECTORY|HOST:PORT")
@click.option("--json", "as_json", is_flag=True, help="With HOST:PORT: print the node's status map as JSON (bytes as hex).")
def status(target: str, as_json: bool) -> None:
    """Show a node's identity, shards, enclaves and peers.

    Given a DIRECTORY, read its data directory (the node need not run).
    Given the HOST:PORT of a running node, ask it: its shards with their
    heights and queue lengths, its peers, enclaves and pending transactions.

    \b
    Example:
        sagachain node status nodes/n1
        sagachain node status 127.0.0.1:7101
    """
    directory = Path(target)
    if not directory.is_dir() and _looks_like_address(target):
        _remote_status(target, as_json)
        return
    from node.config import DATABASE_FILE, load_config, load_key

    try:
        config = load_config(directory)
        key = load_key(directory)
    except SagaError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(2) from None
    table = Table(title=f"node {config.name}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("node key", key.public.hex())
    table.add_row("listens on", config.listen)
    table.add_row("genesis", config.genesis or "(not set)")
    table.add_row("shards", ", ".join(config.shards) or "(none)")
    table.add_row("enclaves", ", ".join(config.enclaves) or "(none)")
    for peer in config.peers:
        table.add_row("peer", f"{peer.address}  key {peer.node_key[:16]}..." if peer.node_key else f"{peer.address}  key pinned on first contact (MEM-5)")
    database = directory / DATABASE_FILE
    if database.is_file():
        from node.storage import NodeStore

        with NodeStore.open(database) as store:
            table.add_row("blocks stored", str(len(store.blocks())))
            for shard in config.shards:
                head = store.head(shard)
                table.add_row(f"head of {shard}", f"height {head.height}")
            table.add_row("pending transactions", str(len(store.pending())))
    else:
        table.add_row("database", "not created yet (init with --genesis)")
    Console().print(table)


def _looks_like_address(text: str) -> bool:
    """HOST:PORT with a numeric port: what a running node's address looks like (a directory wins a tie)."""
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit())


def _remote_status(address: str, as_json: bool) -> None:
    """Ask the running node at ``address`` for its status and print it; errors exit 1 (unreachable) or 2 (bad address)."""
    import json

    import trio

    from node.client import open_client
    from node.messages import Status
    from sagachain.tx_view import message_json, status_table

    async def ask() -> Status:
        async with open_client(address) as client:
            return await client.status()

    try:
        reply = trio.run(ask)
    except InputError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(2) from None
    except SagaError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, style="red")
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(message_json(reply)["data"], sort_keys=True))
    else:
        Console().print(status_table(reply, address))
