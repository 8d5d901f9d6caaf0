"""``sagachain enclave``: a node operator's roster commands (MEM-1, MEM-2, MEM-3).

An enclave's roster is a public account; every change to it is an ordinary
transaction calling one of its native methods, signed and paid by the account
acting for a node (docs/MEMBERSHIP.md). Each command here reads the roster
from a running node (``Client.objects``), builds the call with
``sagachain.core.roster_calls`` (the builder the simulator uses too),
computes any epoch key material locally from the roster's public key
schedule with fresh ``os.urandom`` entropy, signs, submits, and with
``--wait`` follows the transaction until it is final. The node judges the
change with the same rule the auditor applies, so a refusal prints that
rule and its reason.

Exit status, as ``sagachain tx``: 0 done; 1 the node refused the change, it
failed, it was not final in time, or the node could not be reached; 2 the
arguments are wrong (nothing was sent); 130 interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from node.client import Client
from node.config import KEY_FILE, PREVIOUS_KEYS_FILE, load_key
from sagachain.cli_tx import _fail, _run, json_option, node_option, pin_option
from sagachain.core.keys import KeyPair, hex32
from sagachain.core.objects import node_id_for
from sagachain.core.roster import ADMIN, MEMBER, PENDING, RosterEntry, roster_id
from sagachain.core.roster_calls import KeyPackage, RosterView, Value, key_proof, make_key_package, roster_change
from sagachain.enclave_calls import (
    Acting,
    Outcome,
    RosterCall,
    acting_admin,
    acting_from,
    checked_seats,
    chosen_enclave,
    devnet_names,
    entry_on_roster,
    fetch_roster,
    resolve_node,
    roster_from_chain,
    send_call,
)
from sagachain.enclave_view import key_fingerprint, prefix, roster_json, roster_table
from sagachain.errors import InputError
from sagachain.key_rotation import NEXT_KEY_FILE, finish_rotation, read_next_key, write_secret
from sagachain.tx_build import Devnet
from sagachain.tx_view import plain


# -- options ---------------------------------------------------------------------------------

_devnet_option = click.option(
    "--devnet", type=click.Path(path_type=Path, file_okay=False),
    help="A devnet directory: names its accounts and nodes, holds their keys, gives the default --node and --enclave.",
)
_SIGNER = [
    node_option,
    pin_option,
    _devnet_option,
    click.option("--from", "from_name", metavar="NAME", help="With --devnet: the account that signs and pays (E.operator acts for the devnet's founding nodes and the owner)."),
    click.option("--key-seed", metavar="HEX", help="The acting account's Ed25519 seed (64 hex digits)."),
    click.option("--key-file", type=click.Path(path_type=Path, dir_okay=False), help="A file holding the acting account's seed in hex."),
    click.option("--sender", metavar="ACCOUNT", help="The acting account's id (hex; a name with --devnet)."),
    click.option("--enclave", "enclave_name", metavar="NAME", help="The enclave (default: the devnet's one enclave)."),
    click.option("--nonce", type=click.IntRange(min=1), help="The acting account's nonce (default: one past its last final nonce, or past DIR/nonces.json with --devnet if higher)."),
    click.option("--gas-limit", type=click.IntRange(min=1), help="Most gas the transaction may use (default: enough for its script and key material)."),
    click.option("--wait", is_flag=True, help="Wait until the change is in a final block, and show the node's entry after it."),
    click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Seconds --wait waits."),
    json_option,
]
_BY = click.option("--by", "by_text", metavar="NODE", help="The admin node acting (default: the roster's admin whose entry names the signing account; the owner if several).")
_NODE_DIR = click.option("--node-dir", type=click.Path(path_type=Path, file_okay=False), help="The node's data directory (its node.key).")


def _signer_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_SIGNER):
        command = option(command)
    return command


def _checked(build: Callable[[], Any]) -> Any:
    """Run a local check: a bad argument is one red line and exit status 2, before any connection."""
    try:
        return build()
    except InputError as exc:
        _fail(str(exc), 2)


def _finish(outcome: Outcome, acting: Acting, console: Console, after: RosterView | None) -> int:
    """Print the outcome (one red line for a refusal), the node's entry after it; the exit status."""
    if after is not None:
        entry = after.entries.get(bytes.fromhex(outcome.report["node"]))
        outcome.report["after"] = {"state": entry.state if entry else None, "epoch": after.head.epoch, "version": after.head.version}
    if acting.as_json:
        click.echo(json.dumps(plain({**outcome.report, "status": outcome.status, "rule": outcome.rule, "reason": outcome.reason}), sort_keys=True))
    elif outcome.status == "final":
        where = outcome.final
        state = outcome.report.get("after", {})
        console.print(f"final in block {where['shard']} / {where['height']}, entry {where['index']}: node {outcome.report['node'][:12]} is now "
                      f"{state.get('state') or 'off the roster'}; roster epoch {state.get('epoch')}, version {state.get('version')}", markup=False, highlight=False)
    if outcome.status in ("final", "accepted"):
        return 0
    err = Console(stderr=True, soft_wrap=True)
    if not acting.as_json:
        if outcome.status == "late":
            err.print(f"error: {outcome.reason}", style="red", markup=False)
        else:
            where = f" in block {outcome.final['shard']} / {outcome.final['height']}" if outcome.final else ""
            err.print(f"error: the node refused {outcome.report['method']}{where} ({outcome.rule or 'no rule'}): {outcome.reason}", style="red", markup=False)
    return 1


def _change_command(options: dict[str, Any], plan: Callable[[RosterView, Acting], RosterCall | None], *, wait: bool = False,
                    done: Callable[[Outcome | None], str | None] | None = None) -> None:
    """The body every roster change shares: check, connect, read the roster, plan, send, report.

    ``plan`` returns None when there is nothing to send; ``done`` then sees None, else the outcome,
    and may return a note for the operator, printed last (not with --json).
    """
    acting: Acting = _checked(lambda: acting_from(options, wait))
    console = Console()

    def note(text: str | None) -> None:
        if text and not acting.as_json:
            console.print(text, markup=False, highlight=False, soft_wrap=True)

    async def ask(client: Client) -> int:
        view = await fetch_roster(client, acting.enclave)
        call = plan(view, acting)
        if call is None:
            note(done(None) if done is not None else None)
            return 0
        outcome = await send_call(client, acting, view, call, note)
        after = await fetch_roster(client, acting.enclave) if outcome.status == "final" else None
        text = done(outcome) if done is not None else None
        status = _finish(outcome, acting, console, after)
        note(text)
        return status

    _run(acting.address, acting.node_key, ask)


@click.group("enclave")
def enclave() -> None:
    """Manage an enclave's roster on a running node: apply, invite, approve, remove, rotate keys.

    Every change is a transaction calling the enclave's roster account,
    signed and paid by the acting account: the node's own for apply, accept,
    decline, rotate-key and leaving; an admin's for the rest. Key material
    for a new epoch (MEM-3) is computed here from the roster's public
    schedule. NODE is a node id, a hex prefix unique on the roster, or a
    node name of the devnet's devnet.json.

    There is no `create`: an enclave and its shards are declared by the
    genesis (SH-3); `sagachain devnet up --enclave-shards N` makes one.

    \b
    Example:
        sagachain devnet up --dir devnet --enclave-shards 1
        sagachain enclave roster E --devnet devnet
        sagachain enclave apply --devnet devnet --from user0 --node-dir mynode --wait
        sagachain enclave approve 5f1c2a --devnet devnet --from E.operator --wait
    """


# -- reading ----------------------------------------------------------------------------------------


@enclave.command("roster")
@click.argument("enclave_name", metavar="ENCLAVE")
@node_option
@pin_option
@_devnet_option
@click.option("--chain", "chain_path", type=click.Path(path_type=Path, dir_okay=False), help="Read the roster from this chain file instead of a node (offline).")
@click.option("--height", type=click.IntRange(min=0), help="With --chain: the roster after this height of the shard holding the roster account (default: the file's last).")
@json_option
def roster(enclave_name: str, address: str | None, node_key: str | None, devnet: Path | None, chain_path: Path | None, height: int | None, as_json: bool) -> None:
    """Show ENCLAVE's roster: one row per node (state, traits, seats, key, since), and its head.

    From a running node, the latest final state; with --chain, from a chain
    file replayed with the ledger (no rule is checked: `sagachain audit`
    does that), at any --height of the roster's shard. `since` is the roster
    version that last changed the entry; the key is the node key's first 8
    hex digits, as node.ready and devnet.json spell it. --json has every
    field (acting accounts, proofs, earlier keys) and the epoch's members.

    \b
    Example:
        sagachain enclave roster E --node 127.0.0.1:7101
        sagachain enclave roster E --devnet devnet --json
        sagachain node export devnet/nodes/P0-n0 chain.sgc
        sagachain enclave roster E --chain chain.sgc --height 12
    """
    known = _checked(lambda: Devnet.load(devnet)) if devnet is not None else None
    names = {node: name for name, node in devnet_names(known).items()}
    if height is not None and chain_path is None:
        _fail("--height needs --chain FILE: a node answers with its latest final state only", 2)
    if chain_path is not None:
        view, where = _checked(lambda: roster_from_chain(chain_path, enclave_name, height))
        _show(view, where, names, as_json)
        return
    if address is None and known is not None and known.nodes:
        address, node_key = known.nodes[0].address, node_key or known.nodes[0].node_key

    async def ask(client: Client) -> int:
        account = await client.account(roster_id(enclave_name))
        view = await fetch_roster(client, enclave_name)
        _show(view, {"node": str(client.address), "shard": account.shard, "height": account.height}, names, as_json)
        return 0

    _run(address, node_key, ask)


def _show(view: RosterView, where: dict[str, Any], names: dict[bytes, str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(roster_json(view, where), sort_keys=True))
        return
    source = where.get("node") or where.get("chain")
    Console().print(roster_table(view, f"{source}, {where.get('shard')} at height {where.get('height')}", names))


@enclave.command("key-package")
@click.option("--node-dir", required=True, type=click.Path(path_type=Path, file_okay=False), help="The invitee node's data directory (its node.key).")
@click.option("--account", "account_text", required=True, metavar="ACCOUNT", help="The account that will act for the node and sign its accept (hex; a name with --devnet).")
@click.option("--enclave", "enclave_name", metavar="NAME", help="The enclave (default: the devnet's one enclave).")
@_devnet_option
@json_option
def key_package(node_dir: Path, account_text: str, enclave_name: str | None, devnet: Path | None, as_json: bool) -> None:
    """Print the key package an invitee hands to an admin: its node key and the key's proof.

    The proof is the node key's signature binding the key to the enclave
    and to the account that will act for the node (MEM-2). Nothing is sent;
    the admin passes the hex to `sagachain enclave invite --package`.

    \b
    Example:
        sagachain enclave key-package --node-dir mynode --enclave E --account 5f1c...e2
        sagachain enclave key-package --node-dir mynode --devnet devnet --account user1
    """

    def build() -> KeyPackage:
        known = Devnet.load(devnet) if devnet is not None else None
        account = known.resolve(account_text, "--account") if known is not None else hex32(account_text, "--account", "an account id")
        return make_key_package(chosen_enclave(enclave_name, known), load_key(node_dir), account)

    package: KeyPackage = _checked(build)
    if as_json:
        click.echo(json.dumps({"enclave": package.enclave, "node": package.node.hex(), "key": package.key.hex(), "account": package.account.hex(), "package": package.to_hex()}, sort_keys=True))
        return
    Console(stderr=True).print(f"node {package.node.hex()} of enclave {package.enclave}, key {key_fingerprint(package.key)}; hand this to an admin:", markup=False, highlight=False)
    click.echo(package.to_hex())


# -- the node's own changes -------------------------------------------------------------------------


def _new_node_plan(method: str, key: KeyPair, seats: tuple[str, ...]) -> Callable[[RosterView, Acting], RosterCall]:
    """``apply`` or ``join`` of the node holding ``key``: its key, the key's proof binding it to
    the acting account, its seats; a join also builds the epoch that admits it (MEM-3)."""

    def plan(view: RosterView, acting: Acting) -> RosterCall:
        node = node_id_for(key.public)
        values: dict[str, Value] = {"key": key.public, "proof": key_proof(view.enclave, node, key, acting.account), "shards": checked_seats(view, seats)}
        return RosterCall(method, node, values, change=roster_change(method, node, None, key.public))

    return plan


@enclave.command("apply")
@click.option("--node-dir", required=True, type=click.Path(path_type=Path, file_okay=False), help="The applying node's data directory: its node.key proves the key.")
@click.option("--seat", "seats", multiple=True, metavar="SHARD", help="An enclave shard whose committee the node asks to sit on; repeatable (none: keys and state, no vote).")
@_signer_options
def apply(node_dir: Path, seats: tuple[str, ...], **options: Any) -> None:
    """Ask to join the enclave: the node's entry becomes PENDING until an admin approves it.

    The acting account signs, pays, and is bound to the node key by the
    key's proof; it must also sign the node's later accept, leave or
    rotate-key.

    \b
    Example:
        sagachain enclave apply --devnet devnet --from user0 --node-dir mynode --seat E/0 --wait
    """
    key: KeyPair = _checked(lambda: load_key(node_dir))

    _change_command(options, _new_node_plan("apply", key, seats))


@enclave.command("join")
@click.option("--node-dir", required=True, type=click.Path(path_type=Path, file_okay=False), help="The joining node's data directory: its node.key proves the key.")
@click.option("--seat", "seats", multiple=True, metavar="SHARD", help="An enclave shard whose committee the node sits on; repeatable (none: keys and state, no vote).")
@_signer_options
def join(node_dir: Path, seats: tuple[str, ...], **options: Any) -> None:
    """Join an enclave whose policy admits any node (auto-join, MEM-2): MEMBER at once, in a new epoch.

    The node's own acting account signs and pays, and builds the new epoch's
    key material itself, from the roster's public key schedule (MEM-3). An
    enclave without auto-join refuses it (MEM-2): use `apply` there.

    \b
    Example:
        sagachain enclave join --devnet devnet --from user0 --node-dir devnet/nodes/spare0 --seat E/0 --wait
    """
    key: KeyPair = _checked(lambda: load_key(node_dir))

    _change_command(options, _new_node_plan("join", key, seats))


def _own_node(view: RosterView, acting: Acting, node_text: str | None, node_dir: Path | None) -> bytes:
    """The node named by NODE or by its data directory's key (the roster entry holding that key)."""
    if (node_text is None) == (node_dir is None):
        raise InputError("give the node as NODE or as --node-dir DIR, one of them")
    if node_text is not None:
        return resolve_node(node_text, view, devnet_names(acting.devnet))
    assert node_dir is not None
    public = load_key(node_dir).public
    holder = next((e.node for e in view.entries.values() if e.key == public), None)
    if holder is None:
        raise InputError(f"the key in {node_dir / KEY_FILE} ({key_fingerprint(public)}) is no entry's key on the roster of {view.enclave}")
    return holder


def _invited(view: RosterView, node: bytes, method: str) -> RosterEntry:
    entry = entry_on_roster(view, node)
    if entry.state != PENDING or not entry.invite:
        raise InputError(f"node {prefix(node)} is {entry.state}{' (applied, not invited)' if entry.state == PENDING else ''} on the roster of {view.enclave}: only an invited PENDING node can {method}")
    return entry


@enclave.command("accept")
@click.argument("node_text", metavar="[NODE]", required=False)
@_NODE_DIR
@_signer_options
def accept(node_text: str | None, node_dir: Path | None, **options: Any) -> None:
    """Accept an invite: the node becomes a MEMBER with the key material the admin escrowed.

    Signed by the account the invite named. If another change started an
    epoch since the invite, the escrowed material is stale and the node
    refuses it (MEM-3): ask the admin to invite again.

    \b
    Example:
        sagachain enclave accept --devnet devnet --from user1 --node-dir mynode --wait
    """

    def plan(view: RosterView, acting: Acting) -> RosterCall:
        node = _own_node(view, acting, node_text, node_dir)
        entry = _invited(view, node, "accept")
        return RosterCall("accept", node, {"node": node}, roster_change("accept", node, entry))

    _change_command(options, plan)


@enclave.command("decline")
@click.argument("node_text", metavar="[NODE]", required=False)
@_NODE_DIR
@_signer_options
def decline(node_text: str | None, node_dir: Path | None, **options: Any) -> None:
    """Decline an invite: the node's entry is dropped.

    \b
    Example:
        sagachain enclave decline 7a0c3e --devnet devnet --from user1 --wait
    """

    def plan(view: RosterView, acting: Acting) -> RosterCall:
        node = _own_node(view, acting, node_text, node_dir)
        _invited(view, node, "decline")
        return RosterCall("decline", node, {"node": node})

    _change_command(options, plan)


@enclave.command("rotate-key")
@click.option("--node-dir", required=True, type=click.Path(path_type=Path, file_okay=False), help="The MEMBER node's data directory: node.key is replaced once the rotation is final.")
@_signer_options
def rotate_key(node_dir: Path, **options: Any) -> None:
    """Give a MEMBER node a new key (MEM-5): a fresh seed, a new epoch (MEM-3), then the files.

    Draws a new seed and keeps it in DIR/node.key.next (mode 0600) while the
    rotation is under way; waits until it is final (always, up to
    --timeout); then appends the old seed to DIR/node.key.previous and
    writes the new one to DIR/node.key, both mode 0600. Restart the node
    afterwards: it signs with the key in node.key. Signed by the node's
    acting account. Run it again after a timeout: it finishes the files once
    the rotation is final, without sending another.

    \b
    Example:
        sagachain enclave rotate-key --devnet devnet --from E.operator --node-dir devnet/nodes/E_0-n1
    """
    old: KeyPair = _checked(lambda: load_key(node_dir))
    pending: KeyPair | None = _checked(lambda: read_next_key(node_dir))
    fresh = pending or KeyPair(os.urandom(32))

    def plan(view: RosterView, acting: Acting) -> RosterCall | None:
        entry = next((e for e in view.entries.values() if e.key in (old.public, fresh.public)), None)
        if entry is None or entry.state != MEMBER:
            raise InputError(f"the key in {node_dir / KEY_FILE} ({key_fingerprint(old.public)}) is no MEMBER's key on the roster of {view.enclave}: only a MEMBER rotates its key")
        if pending is not None:
            if entry.key == pending.public:
                return None  # sent by an earlier run and final since: only the files are left
            raise InputError(f"{node_dir / NEXT_KEY_FILE} holds the seed of a rotation the roster of {view.enclave} does not show: if its "
                             "transaction is still pending, wait and run this again; if it was refused, delete that file and run again")
        values: dict[str, Value] = {"node": entry.node, "key": fresh.public, "proof": key_proof(view.enclave, entry.node, fresh, acting.account)}

        def keep() -> None:  # on disk before the transaction may leave: a lost seed would lock the node out
            write_secret(node_dir / NEXT_KEY_FILE, fresh.seed.hex() + "\n")

        return RosterCall("rotate", entry.node, values, roster_change("rotate", entry.node, entry, fresh.public), keep)

    def done(outcome: Outcome | None) -> str | None:
        if outcome is None or outcome.status == "final":
            finish_rotation(node_dir, old, fresh)
            if outcome is not None:
                outcome.report["key_files"] = {"key": str(node_dir / KEY_FILE), "previous": str(node_dir / PREVIOUS_KEYS_FILE)}
            return (f"{node_dir / KEY_FILE} now holds the new key {key_fingerprint(fresh.public)}; the old seed is in "
                    f"{node_dir / PREVIOUS_KEYS_FILE}. Restart the node so that it signs with it: sagachain node start {node_dir}")
        if outcome.status in ("refused", "failed"):
            (node_dir / NEXT_KEY_FILE).unlink(missing_ok=True)
            return None
        return f"the new seed waits in {node_dir / NEXT_KEY_FILE}; run this command again once the rotation is final"

    _change_command(options, plan, wait=True, done=done)


# -- an admin's changes ------------------------------------------------------------------------------


@enclave.command("invite")
@click.option("--package", "package_hex", required=True, metavar="HEX", help="The invitee's key package (`sagachain enclave key-package`).")
@click.option("--seat", "seats", multiple=True, metavar="SHARD", help="An enclave shard whose committee the invitee will sit on; repeatable.")
@_BY
@_signer_options
def invite(package_hex: str, seats: tuple[str, ...], by_text: str | None, **options: Any) -> None:
    """Invite a node: its entry becomes PENDING with the key material of the epoch that adds it
    escrowed, until the invitee accepts (or declines).

    The escrowed material is for the next epoch: if another change starts
    an epoch first, the accept is refused (MEM-3) and the node must be
    invited again.

    \b
    Example:
        sagachain enclave invite --devnet devnet --from E.operator --package 82a4... --seat E/0 --wait
    """
    package: KeyPackage = _checked(lambda: KeyPackage.from_hex(package_hex))

    def plan(view: RosterView, acting: Acting) -> RosterCall:
        if package.enclave != view.enclave:
            raise InputError(f"--package is a key package for enclave {package.enclave!r}, not {view.enclave!r}; ask the invitee for one made with --enclave {view.enclave}")
        values: dict[str, Value] = {"by": acting_admin(view, acting, by_text), "key": package.key, "proof": package.proof, "account": package.account, "shards": checked_seats(view, seats)}
        return RosterCall("invite", package.node, values, roster_change("invite", package.node, view.entries.get(package.node), package.key))

    _change_command(options, plan)


def _admin_command(method: str, node_text: str, by_text: str | None, options: dict[str, Any], extra: dict[str, Value] | None = None) -> None:
    """approve, remove, block, unblock, grant, revoke: an admin's call about one node on the roster."""

    def plan(view: RosterView, acting: Acting) -> RosterCall:
        node = resolve_node(node_text, view, devnet_names(acting.devnet))
        entry = entry_on_roster(view, node)
        values: dict[str, Value] = {"by": acting_admin(view, acting, by_text, node if method == "remove" else None), "node": node, **(extra or {})}
        return RosterCall(method, node, values, roster_change(method, node, entry))

    _change_command(options, plan)


@enclave.command("approve")
@click.argument("node_text", metavar="NODE")
@_BY
@_signer_options
def approve(node_text: str, by_text: str | None, **options: Any) -> None:
    """Approve an application: the PENDING node becomes a MEMBER, and a new epoch starts (MEM-3).

    \b
    Example:
        sagachain enclave approve 7a0c3e --devnet devnet --from E.operator --wait
    """
    _admin_command("approve", node_text, by_text, options)


@enclave.command("remove")
@click.argument("node_text", metavar="NODE")
@_BY
@_signer_options
def remove(node_text: str, by_text: str | None, **options: Any) -> None:
    """Remove a node: its entry is dropped; removing a MEMBER starts a new epoch it cannot read.

    Done by an admin, or by the node's own account (the node leaves). The
    owner is never removed (MEM-2).

    \b
    Example:
        sagachain enclave remove 7a0c3e --devnet devnet --from E.operator --wait
    """
    _admin_command("remove", node_text, by_text, options)


@enclave.command("block")
@click.argument("node_text", metavar="NODE")
@_BY
@_signer_options
def block(node_text: str, by_text: str | None, **options: Any) -> None:
    """Block a node: its entry becomes BLOCKED (no traits), so it cannot apply again until unblocked.

    \b
    Example:
        sagachain enclave block 7a0c3e --devnet devnet --from E.operator --wait
    """
    _admin_command("block", node_text, by_text, options)


@enclave.command("unblock")
@click.argument("node_text", metavar="NODE")
@_BY
@_signer_options
def unblock(node_text: str, by_text: str | None, **options: Any) -> None:
    """Unblock a node: its BLOCKED entry is dropped, and it may apply again.

    \b
    Example:
        sagachain enclave unblock 7a0c3e --devnet devnet --from E.operator --wait
    """
    _admin_command("unblock", node_text, by_text, options)


_TRAIT = click.option("--trait", default=ADMIN, show_default=True, help="The trait (owner is never granted or revoked, MEM-2).")


@enclave.command("grant")
@click.argument("node_text", metavar="NODE")
@_TRAIT
@_BY
@_signer_options
def grant(node_text: str, trait: str, by_text: str | None, **options: Any) -> None:
    """Grant a MEMBER a trait: admin by default.

    \b
    Example:
        sagachain enclave grant E/0-n1 --devnet devnet --from E.operator --wait
    """
    _admin_command("grant", node_text, by_text, options, {"trait": trait})


@enclave.command("revoke")
@click.argument("node_text", metavar="NODE")
@_TRAIT
@_BY
@_signer_options
def revoke(node_text: str, trait: str, by_text: str | None, **options: Any) -> None:
    """Revoke a MEMBER's trait: admin by default (the owner stays an admin, MEM-2).

    \b
    Example:
        sagachain enclave revoke E/0-n1 --devnet devnet --from E.operator --wait
    """
    _admin_command("revoke", node_text, by_text, options, {"trait": trait})
