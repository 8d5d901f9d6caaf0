"""``sagachain tx``: talk to a running node as a client.

Every subcommand opens one connection (``node/client.py``), asks, prints and
closes. The node's address comes from ``--node`` or the ``SAGACHAIN_NODE``
environment variable, so a session against one devnet needs it once.

Exit status: 0 done; 1 the node refused, the transaction failed or did not
become final in time, or the node could not be reached; 2 the arguments are
wrong (nothing was sent); 130 interrupted (Ctrl-C). The views are in
``sagachain/tx_view.py``, the building of a transaction in ``sagachain/tx_build.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import trio
from rich.console import Console

from node.client import Client, open_client, wait_final
from sagachain.errors import InputError, SagaError
from sagachain.tx_build import SendArgs, build_transaction, hex_id
from sagachain.tx_view import (
    account_table,
    block_tables,
    event_row,
    message_json,
    object_table,
    plain,
    receipt_table,
    tx_receipt_table,
)

NODE_ENV = "SAGACHAIN_NODE"
INTERRUPTED = 130  # the shell's status for Ctrl-C

node_option = click.option("--node", "address", envvar=NODE_ENV, metavar="HOST:PORT", help=f"The node to ask (default: ${NODE_ENV}).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (bytes as hex) instead of tables.")
pin_option = click.option("--node-key", "node_key", metavar="HEX", help="Refuse the node unless it proves this Ed25519 key (MEM-5).")


def _fail(message: str, status: int) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, style="red")
    sys.exit(status)


def _run(address: str | None, node_key: str | None, ask: Callable[[Client], Awaitable[int]]) -> None:
    """Connect, run ``ask``, exit with its status; errors become one red line and a status (module docstring)."""
    if not address:
        _fail(f"no node address: give --node HOST:PORT or set {NODE_ENV}", 2)
    try:
        expected = None if node_key is None else hex_id(node_key, "--node-key")

        async def session() -> int:
            async with open_client(address, expected=expected) as client:
                return await ask(client)

        status = trio.run(session)
    except InputError as exc:
        _fail(str(exc), 2)
    except SagaError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)  # how `tx watch` usually ends: no traceback for it
    sys.exit(status)


def _print_json(tree: Any) -> None:
    click.echo(json.dumps(plain(tree), sort_keys=True))


@click.group("tx")
def tx() -> None:
    """Send transactions to a running node and read what it knows.

    \b
    Example:
        export SAGACHAIN_NODE=127.0.0.1:7101
        sagachain tx send --devnet devnet --from alice --account a=alice --account b=bob \\
            --gas-limit 10000 --script "a.pay(b, 10)" --wait
        sagachain tx account 5f1c...e2 --json
    """


# -- tx send ----------------------------------------------------------------------------


@tx.command("send")
@node_option
@pin_option
@click.option("--devnet", type=click.Path(path_type=Path, file_okay=False), help="A devnet directory: its devnet.json names accounts, holds their keys, and gives the default --node.")
@click.option("--from", "from_name", metavar="NAME", help="With --devnet: the account that sends and signs.")
@click.option("--key-seed", metavar="HEX", help="The sender's Ed25519 seed (64 hex digits).")
@click.option("--key-file", type=click.Path(path_type=Path, dir_okay=False), help="A file holding the sender's seed in hex.")
@click.option("--sender", metavar="ACCOUNT", help="The sender's account id (hex; a name with --devnet).")
@click.option("--nonce", type=click.IntRange(min=1), help="The sender's nonce (default: one past its last final nonce as the node reports it, or past DIR/nonces.json with --devnet if higher).")
@click.option("--gas-limit", required=True, type=click.IntRange(min=1), help="Most gas the transaction may use.")
@click.option("--payer", metavar="ACCOUNT", help="The non-enclave account that pays the gas (GAS-1; default: the sender).")
@click.option("--account", "accounts", multiple=True, metavar="ALIAS=ACCOUNT", help="An account the script touches, under the name the script uses; repeatable.")
@click.option("--script", required=True, help="The SagaPython the transaction runs.")
@click.option("--wait", is_flag=True, help="Wait until the transaction is in a final block and show that block.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Seconds --wait waits.")
@json_option
def send(address: str | None, node_key: str | None, devnet: Path | None, from_name: str | None, key_seed: str | None, key_file: Path | None, sender: str | None, nonce: int | None, gas_limit: int, payer: str | None, accounts: tuple[str, ...], script: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Sign a transaction and submit it; print its id and the node's receipt.

    With --wait, also wait (on the node's "blocks" events) until it is in a
    final block, then show that block's shard, height and the script's
    outcome. Exit status 1 if the node refused it, its script failed, or it
    was not final within --timeout.

    \b
    Example:
        sagachain tx send --node 127.0.0.1:7101 --devnet devnet --from alice \\
            --account a=alice --account b=bob --gas-limit 10000 \\
            --script "a.pay(b, 10)" --wait
        sagachain tx send --key-file alice.seed --sender 5f1c...e2 --nonce 3 \\
            --gas-limit 10000 --account a=5f1c...e2 --script "a.balance()"
    """
    args = SendArgs(devnet, from_name, key_seed, key_file, sender, nonce, gas_limit, payer, accounts, script)
    try:
        signed, known = build_transaction(args, chain_nonce=None if nonce is not None else 0)  # every local check, before connecting
    except InputError as exc:
        _fail(str(exc), 2)
    console = Console()

    async def ask(client: Client) -> int:
        nonlocal signed
        if nonce is None:  # one past the sender's last nonce: the node's final one, or the devnet's record if higher
            last = (await client.account(signed.sender)).nonce
            signed, _ = build_transaction(args, chain_nonce=last)
        report: dict[str, Any] = {"tx": signed.id}
        events = client.subscribe(["blocks"])
        if wait:
            await events.start()  # subscribed before submitting: the block cannot slip by unseen
        receipt = await client.submit(signed)
        report["receipt"] = message_json(receipt)
        if not as_json:
            console.print(f"transaction {signed.id.hex()}", soft_wrap=True, highlight=False, markup=False)
            console.print(tx_receipt_table(receipt))
        if receipt.accepted and known is not None:
            known.record_nonce(signed.sender, signed.nonce)
        if not receipt.accepted or not wait:
            return _done(report, as_json, 0 if receipt.accepted else 1)
        with trio.move_on_after(timeout):
            data, index = await wait_final(events, signed.id)
            flags = data.get("ok") or []
            ok = bool(flags[index]) if index < len(flags) else None
            report["final"] = {"shard": data.get("shard"), "height": data.get("height"), "index": index, "ok": ok, "hash": data.get("hash")}
            if not as_json:
                console.print(f"final in block {data.get('shard')} / {data.get('height')}, entry {index}: " + ("script succeeded" if ok else "[red]script failed[/red]"))
                for table in block_tables(await client.block(str(data.get("shard")), int(data.get("height") or 0))):
                    console.print(table)
            return _done(report, as_json, 0 if ok else 1)
        late = await client.receipt(signed.id)  # the last word, in case an event was missed
        report["receipt"] = message_json(late)
        if not as_json:
            console.print(receipt_table(late))
        if late.status != "final":
            Console(stderr=True).print(f"not final after {timeout} s (status {late.status}); check later with `sagachain tx receipt {signed.id.hex()}`", style="red", markup=False)
        return _done(report, as_json, 0 if late.status == "final" and late.ok else 1)

    if address is None and known is not None and known.nodes:
        address, node_key = known.nodes[0].address, node_key or known.nodes[0].node_key
    _run(address, node_key, ask)


def _done(report: dict[str, Any], as_json: bool, status: int) -> int:
    if as_json:
        _print_json(report)
    return status


# -- reads --------------------------------------------------------------------------------


def _read_command(ask: Callable[[Client], Awaitable[Any]], render: Callable[[Any], Any], address: str | None, node_key: str | None, as_json: bool) -> None:
    """The common body of the read commands: one request, one reply printed."""

    async def go(client: Client) -> int:
        reply = await ask(client)
        if as_json:
            _print_json(message_json(reply))
        else:
            for table in render(reply):
                Console().print(table)
        return 0

    _run(address, node_key, go)


def _checked_id(text: str, what: str) -> bytes:
    try:
        return hex_id(text, what)
    except InputError as exc:
        _fail(str(exc), 2)


@tx.command("receipt")
@click.argument("tx_id", metavar="TXID")
@node_option
@pin_option
@json_option
def receipt(tx_id: str, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Where transaction TXID stands on the node: final (block, entry, outcome), pending, refused or unknown.

    \b
    Example:
        sagachain tx receipt 9ad0c3...41 --node 127.0.0.1:7101
    """
    raw = _checked_id(tx_id, "TXID")
    _read_command(lambda c: c.receipt(raw), lambda r: [receipt_table(r)], address, node_key, as_json)


@tx.command("account")
@click.argument("account_id", metavar="ID")
@node_option
@pin_option
@json_option
def account(account_id: str, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Account ID as of the node's latest final block: owning shard, height, class, owner and fields.

    An enclave account's state never leaves its enclave (MEM-4): its value shows as unknown.

    \b
    Example:
        sagachain tx account 5f1c...e2 --node 127.0.0.1:7101 --json
    """
    raw = _checked_id(account_id, "ID")
    _read_command(lambda c: c.account(raw), lambda r: [account_table(r)], address, node_key, as_json)


@tx.command("object")
@click.argument("object_id", metavar="ID")
@node_option
@pin_option
@json_option
def object_(object_id: str, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Public object ID: class, owner and fields (unknown when off chain or not known to the node).

    \b
    Example:
        sagachain tx object 0b7e...9c --node 127.0.0.1:7101
    """
    raw = _checked_id(object_id, "ID")
    _read_command(lambda c: c.object(raw), lambda r: [object_table(r)], address, node_key, as_json)


@tx.command("block")
@click.argument("shard")
@click.argument("height", type=click.IntRange(min=0))
@node_option
@pin_option
@json_option
def block(shard: str, height: int, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Block HEIGHT of SHARD: header fields, one row per entry, and the size of its quorum certificate.

    \b
    Example:
        sagachain tx block P0 12 --node 127.0.0.1:7101
    """
    _read_command(lambda c: c.block(shard, height), block_tables, address, node_key, as_json)


@tx.command("watch")
@click.option("--topic", "topics", multiple=True, type=click.Choice(["blocks", "transfers", "roster", "mail"]), help="A topic to follow; repeatable (default: blocks).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many events (default: until interrupted).")
@node_option
@pin_option
@json_option
def watch(topics: tuple[str, ...], count: int | None, address: str | None, node_key: str | None, as_json: bool) -> None:
    """Print the node's events as they come: new blocks, account transfers, enclave roster changes, mailbox envelopes.

    With --json, one JSON object per line (topic, seq, data; bytes as hex).

    \b
    Example:
        sagachain tx watch --topic blocks --topic transfers --count 20 --node 127.0.0.1:7101
    """
    chosen = topics or ("blocks",)
    console = Console()

    async def go(client: Client) -> int:
        if not as_json:
            console.print(f"{'seq':>6}  {'topic':<9}  event   (following {', '.join(chosen)} on {client.address})", style="bold", markup=False, highlight=False)
        seen = 0
        async for event in client.subscribe(chosen):
            if as_json:
                click.echo(json.dumps(message_json(event), sort_keys=True))
            else:
                seq, topic, text = event_row(event)
                console.print(f"{seq:>6}  {topic:<9}  {text}", markup=False, highlight=False)
            seen += 1
            if count is not None and seen >= count:
                break
        return 0

    _run(address, node_key, go)
