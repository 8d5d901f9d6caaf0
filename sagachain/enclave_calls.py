"""What ``sagachain enclave`` sends, and from which roster: the checked options, the named
nodes, one roster change signed, submitted and followed, the roster read offline.

Kept apart from the click commands (``sagachain.cli_enclave``) so that the
steps between an operator's words and a signed roster transaction read in
one place. The call itself (script, change, key material) comes from
``sagachain.core.roster_calls``, the builder the simulator uses too; what is
added here is the client side: the roster as a node answers it
(``Client.objects``), fresh ``os.urandom`` entropy for the key material,
the nonce from the node, and reading the final block back for the rule that
refused a change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from node.client import Client, wait_final
from sagachain.core.chainfile import read_chain
from sagachain.core.encoding import encode
from sagachain.core.epoch_keys import Change
from sagachain.core.keys import KeyPair
from sagachain.core.ledger import ChainState
from sagachain.core.objects import node_id_for
from sagachain.core.roster import RosterEntry, roster_id
from sagachain.core.roster_calls import ROSTER_ALIAS, RosterView, Value, gas_limit, read_roster, roster_script, takes_rekey
from sagachain.core.tx import Transaction, make_transaction
from sagachain.enclave_view import prefix
from sagachain.errors import ChainFormatError, InputError
from sagachain.tx_build import Devnet, next_nonce, resolve_signer
from sagachain.tx_view import message_json


@dataclass(frozen=True)
class Acting:
    """The checked options every roster change shares: who signs and pays, where, how."""

    devnet: Devnet | None
    key: KeyPair
    account: bytes
    enclave: str
    address: str | None
    node_key: str | None
    nonce: int | None
    gas: int | None
    wait: bool
    timeout: float
    as_json: bool


def acting_from(options: dict[str, Any], wait: bool = False) -> Acting:
    """The shared options checked before connecting; InputError (exit 2) names the bad one."""
    devnet = Devnet.load(options["devnet"]) if options["devnet"] is not None else None
    key, account = resolve_signer(devnet, options["from_name"], options["key_seed"], options["key_file"], options["sender"])
    address, node_key = options["address"], options["node_key"]
    if address is None and devnet is not None and devnet.nodes:
        address, node_key = devnet.nodes[0].address, node_key or devnet.nodes[0].node_key
    return Acting(
        devnet=devnet, key=key, account=account, enclave=chosen_enclave(options["enclave_name"], devnet), address=address,
        node_key=node_key, nonce=options["nonce"], gas=options["gas_limit"], wait=options["wait"] or wait,
        timeout=options["timeout"], as_json=options["as_json"],
    )


def chosen_enclave(given: str | None, devnet: Devnet | None) -> str:
    """``--enclave``, or the devnet's enclave when it has exactly one (a devnet has at most one)."""
    if given:
        return given
    if devnet is not None and len(devnet.enclaves) == 1:
        return devnet.enclaves[0]
    known = f" (the devnet's enclaves: {', '.join(devnet.enclaves) or 'none'})" if devnet is not None else ""
    raise InputError(f"which enclave? give --enclave NAME{known}")


# -- naming nodes ------------------------------------------------------------------------------


def devnet_names(devnet: Devnet | None) -> dict[str, bytes]:
    """Node name -> node id, for the nodes devnet.json lists (their first key's id)."""
    names: dict[str, bytes] = {}
    for node in devnet.nodes if devnet is not None else ():
        try:
            names[node.name] = node_id_for(bytes.fromhex(node.node_key or ""))
        except ValueError:
            continue  # a node recorded without a readable key cannot be named; its id still can
    return {name: node for name, node in names.items() if name}


def resolve_node(text: str, view: RosterView, names: dict[str, bytes], what: str = "NODE") -> bytes:
    """A node named by a devnet node name, a whole node id, or a hex prefix unique on the roster."""
    if text in names:
        return names[text]
    lowered = text.lower()
    if not lowered or any(c not in "0123456789abcdef" for c in lowered):
        known = f"; devnet node names: {', '.join(sorted(names))}" if names else ""
        raise InputError(f"{what} {text!r} is neither a node id (hex) nor a node name{known}")
    if len(lowered) == 64:
        return bytes.fromhex(lowered)
    found = [node for node in view.entries if node.hex().startswith(lowered)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(f"{what} {text!r}: no node on the roster of {view.enclave} has an id starting so; `sagachain enclave roster {view.enclave}` lists them")
    raise InputError(f"{what} {text!r} matches {len(found)} nodes on the roster of {view.enclave} ({', '.join(prefix(n) for n in found)}); give more hex digits")


def entry_on_roster(view: RosterView, node: bytes, what: str = "NODE") -> RosterEntry:
    """The entry of ``node``: a change about a node needs one, and saying so here sends nothing."""
    entry = view.entries.get(node)
    if entry is None:
        raise InputError(f"{what} {prefix(node)} is not on the roster of {view.enclave}; `sagachain enclave roster {view.enclave}` lists its nodes")
    return entry


def default_by(view: RosterView, account: bytes, node: bytes | None = None) -> bytes:
    """The admin acting for a change signed by ``account``: the admin MEMBER whose entry names
    that account (the owner when several do); else, for a node's own account, the node itself
    (a node leaving). The rules then check the choice (MEM-2)."""
    admins = view.admins_acting_through(account)
    if len(admins) == 1:
        return admins[0].node
    owner = view.owner()
    if owner is not None and owner in admins:
        return owner.node
    if admins:
        raise InputError(f"{len(admins)} admins of {view.enclave} act through account {prefix(account)} ({', '.join(prefix(a.node) for a in admins)}); give --by NODE")
    if node is not None and node in view.entries and view.entries[node].account == account:
        return node
    raise InputError(
        f"no MEMBER with the admin trait on the roster of {view.enclave} acts through account {prefix(account)}; "
        "sign with an admin's account (--devnet DIR --from NAME, or --key-file and --sender) or give --by NODE"
    )


def acting_admin(view: RosterView, acting: Acting, by_text: str | None, node: bytes | None = None) -> bytes:
    """The ``by`` of an admin call: ``--by NODE`` as given, else :func:`default_by`."""
    if by_text is not None:
        return resolve_node(by_text, view, devnet_names(acting.devnet), "--by")
    return default_by(view, acting.account, node)


def checked_seats(view: RosterView, seats: tuple[str, ...]) -> list[str]:
    """``--seat`` values, each a shard of the enclave (MEM-2 would refuse others on chain, after the gas)."""
    unknown = [s for s in seats if s not in view.head.shards]
    if unknown:
        raise InputError(f"--seat {', '.join(unknown)}: not a shard of enclave {view.enclave} (its shards: {', '.join(view.head.shards) or 'none'})")
    return sorted(set(seats))


# -- one roster change, end to end ---------------------------------------------------------------


@dataclass(frozen=True)
class RosterCall:
    """A roster method call to make: every parameter but ``rekey``, which is built at sending."""

    method: str
    node: bytes  # the node the change is about
    values: dict[str, Value]
    change: Change | None = None  # what the key material is for (methods that take it)
    before_submit: Callable[[], None] | None = None  # runs once the transaction is signed, right before it leaves


@dataclass
class Outcome:
    """How a submitted change ended, for the report and the exit status."""

    tx: Transaction
    status: str = "refused"  # refused, accepted, final, failed, late
    rule: str | None = None
    reason: str | None = None
    final: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


async def fetch_roster(client: Client, enclave: str) -> RosterView:
    """The roster as the node's latest final state holds it: every object of the roster account."""
    return read_roster(enclave, await client.objects(roster_id(enclave)))


def build_transaction(view: RosterView, acting: Acting, call: RosterCall, chain_nonce: int | None) -> tuple[Transaction, bytes]:
    """The signed transaction for ``call`` and its key material (fresh entropy: never reproducible)."""
    values = dict(call.values)
    rekey = b""
    if takes_rekey(call.method):
        if call.change is not None:
            rekey = encode(view.schedule.commit(call.change, os.urandom)[0])
        values["rekey"] = rekey
    script = roster_script(call.method, values)
    nonce = acting.nonce if acting.nonce is not None else next_nonce(acting.devnet, acting.account, chain_nonce)
    tx = make_transaction(
        key=acting.key, sender=acting.account, nonce=nonce, gas_limit=acting.gas or gas_limit(script, rekey),
        gas_payer=acting.account, accounts={ROSTER_ALIAS: roster_id(view.enclave)}, script=script,
    )
    return tx, rekey


async def send_call(client: Client, acting: Acting, view: RosterView, call: RosterCall, say: Callable[[str], None]) -> Outcome:
    """Sign, submit and (with --wait) follow one roster change, telling ``say`` what happens."""
    chain_nonce = None if acting.nonce is not None else (await client.account(acting.account)).nonce
    tx, rekey = build_transaction(view, acting, call, chain_nonce)
    epoch_after = view.head.epoch + (1 if call.change is not None and call.method != "invite" else 0)  # an invite's epoch starts at the accept
    outcome = Outcome(tx=tx, report={
        "enclave": view.enclave, "method": call.method, "node": call.node.hex(), "tx": tx.id.hex(),
        "epoch": {"before": view.head.epoch, "after": epoch_after}, "rekey_bytes": len(rekey),
    })
    say(f"{view.enclave}: {call.method} {prefix(call.node)}" + (f", epoch {view.head.epoch} -> {epoch_after}" if epoch_after != view.head.epoch else "")
        + (f", {len(rekey)} bytes of key material" if rekey else ""))
    say(f"transaction {tx.id.hex()}")
    events = client.subscribe(["blocks"])
    if acting.wait:
        await events.start()  # before submitting: the block cannot slip by unseen
    if call.before_submit is not None:
        call.before_submit()
    receipt = await client.submit(tx)
    outcome.report["receipt"] = message_json(receipt)
    if not receipt.accepted:
        outcome.rule, outcome.reason = receipt.rule, receipt.reason
        return outcome
    if acting.devnet is not None:
        acting.devnet.record_nonce(tx.sender, tx.nonce)
    outcome.status = "accepted"
    if not acting.wait:
        say(f"accepted: queued; `sagachain tx receipt {tx.id.hex()}` tells when it is final")
        return outcome
    with trio.move_on_after(acting.timeout):
        data, index = await wait_final(events, tx.id)
        await settle(client, outcome, str(data.get("shard")), int(data.get("height") or 0), index)
        return outcome
    late = await client.receipt(tx.id)  # the last word, in case an event was missed
    outcome.report["receipt"] = message_json(late)
    if late.status == "final" and late.shard is not None:
        await settle(client, outcome, late.shard, late.height, late.index)
    elif late.status == "refused":
        outcome.status, outcome.rule, outcome.reason = "refused", late.rule, late.reason
    else:
        outcome.status, outcome.reason = "late", f"not final after {acting.timeout} s (status {late.status}); check later with `sagachain tx receipt {tx.id.hex()}`"
        outcome.rule = late.rule
    return outcome


async def settle(client: Client, outcome: Outcome, shard: str, height: int, index: int) -> None:
    """Read the final block's entry: did the roster method succeed, and if not, by which rule."""
    reply = await client.block(shard, height)
    entry = reply.block.entries[index] if reply.block is not None and index < len(reply.block.entries) else None
    ok = bool(getattr(entry, "ok", False))
    outcome.final = {"shard": shard, "height": height, "index": index, "ok": ok}
    outcome.report["final"] = outcome.final
    if ok:
        outcome.status = "final"
        return
    outcome.status = "failed"
    error = str(getattr(entry, "error", "") or "the script failed")
    rule, sep, reason = error.partition(": ")
    outcome.rule, outcome.reason = (rule, reason) if sep and "-" in rule and " " not in rule else (None, error)


# -- the roster at a height of a chain file ------------------------------------------------------


def roster_from_chain(path: Path, enclave_name: str, height: int | None) -> tuple[RosterView, dict[str, Any]]:
    """The roster after ``height`` of the shard holding the roster account, replaying the file's
    blocks in order with ``ChainState`` (the roster changes only in that shard's blocks)."""
    try:
        chain = read_chain(path)
    except ChainFormatError as exc:
        raise InputError(f"--chain {path} is not a readable chain file: {exc.message}") from None
    except OSError as exc:
        raise InputError(f"--chain {path}: cannot read it: {exc.strerror}") from None
    state = ChainState(chain.genesis)
    rid = roster_id(enclave_name)
    if rid not in state.owner:
        raise InputError(f"enclave {enclave_name!r} has no roster in {path}; its enclaves: {', '.join(sorted(state.enclaves)) or 'none'}")
    for block in chain.blocks:
        if height is not None and block.shard == state.owner[rid] and block.height > height:
            break
        state.apply_block(block)
    shard = state.owner[rid]
    head = state.heads.get(shard, 0)
    if height is not None and height > head:
        raise InputError(f"--height {height}: {path} holds {shard}, the roster's shard, up to height {head} only")
    return read_roster(enclave_name, state.account_objects(rid)), {"chain": str(path), "shard": shard, "height": head}
