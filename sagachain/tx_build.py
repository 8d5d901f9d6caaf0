"""What ``sagachain tx send`` signs: its options checked, devnet names resolved, the nonce chosen.

Kept apart from the command so the rules for turning options into a signed
transaction read in one place, and so tests can build one without a node.
A devnet directory (``sagachain devnet up``) names its accounts and holds
their seeds in ``devnet.json``; ``nonces.json`` beside it records the last
nonce its tools signed per account. The nonce defaults to one past the larger
of that record and the node's last final nonce for the sender (``Account.nonce``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sagachain.core.keys import KeyPair, hex32
from sagachain.core.tx import Transaction, make_transaction
from sagachain.errors import InputError

ID_SIZE = 32
DEVNET_FILE = "devnet.json"
NONCE_FILE = "nonces.json"  # in a devnet directory: the last nonce signed per account (hex id -> int), shared with `devnet load`


def hex_id(text: str, what: str) -> bytes:
    return hex32(text, what, f"a {ID_SIZE}-byte id")



@dataclass(frozen=True)
class DevnetAccount:
    name: str
    id: bytes
    seed: bytes
    enclave: str | None


@dataclass(frozen=True)
class DevnetNode:
    address: str
    node_key: str | None  # hex
    name: str = ""


@dataclass(frozen=True)
class Devnet:
    """A devnet directory's accounts, so a person can say ``alice`` instead of 64 hex digits."""

    directory: Path
    accounts: dict[str, DevnetAccount]
    nodes: tuple[DevnetNode, ...]  # the first is the default --node, with its key pinned
    enclaves: tuple[str, ...] = ()

    @classmethod
    def load(cls, directory: Path) -> Devnet:
        path = directory / DEVNET_FILE
        try:
            data = json.loads(path.read_text())
            accounts = {
                a["name"]: DevnetAccount(name=a["name"], id=bytes.fromhex(a["id"]), seed=bytes.fromhex(a["seed"]), enclave=a.get("enclave"))
                for a in data["accounts"]
            }
            nodes = tuple(
                DevnetNode(address=str(n["address"]), node_key=str(n.get("node_key") or "") or None, name=str(n.get("name") or ""))
                for n in data.get("nodes", [])
                if isinstance(n, dict) and n.get("address")
            )
            enclaves = tuple(str(e) for e in data.get("enclaves") or ())
        except OSError as exc:
            raise InputError(f"--devnet {directory}: cannot read {path}: {exc.strerror}; give the directory a devnet was created in") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"--devnet {directory}: {path} is not a devnet description ({type(exc).__name__}: {exc}); it needs an \"accounts\" list of name, id, seed, enclave") from None
        return cls(directory=directory, accounts=accounts, nodes=nodes, enclaves=enclaves)

    def account(self, name: str, what: str) -> DevnetAccount:
        if name not in self.accounts:
            raise InputError(f"{what} {name!r} is not an account of the devnet in {self.directory}; known: {', '.join(sorted(self.accounts))}")
        return self.accounts[name]

    def resolve(self, text: str, what: str) -> bytes:
        """An account given by devnet name or by hex id."""
        return self.accounts[text].id if text in self.accounts else hex_id(text, what)

    def last_nonce(self, account: bytes) -> int:
        """The last nonce signed for ``account`` by this devnet's tools (``devnet load``, ``tx send``).

        No entry means none signed: a devnet starts from its genesis, where no
        account has used a nonce, and ``devnet up --fresh`` removes the record.
        """
        path = self.directory / NONCE_FILE
        try:
            known = json.loads(path.read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise InputError(f"--devnet {self.directory}: cannot read {path} ({exc}); give --nonce N") from None
        value = known.get(account.hex(), 0) if isinstance(known, dict) else None
        if type(value) is not int:
            raise InputError(f"--devnet {self.directory}: {path} holds {value!r} for {account.hex()}, not a nonce; give --nonce N")
        return value

    def record_nonce(self, account: bytes, nonce: int) -> None:
        path = self.directory / NONCE_FILE
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        known[account.hex()] = max(nonce, int(known.get(account.hex(), 0)))
        path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class SendArgs:
    """The raw options of ``tx send``; :func:`build_transaction` checks them and signs."""

    devnet: Path | None
    from_name: str | None
    key_seed: str | None
    key_file: Path | None
    sender: str | None
    nonce: int | None
    gas_limit: int
    payer: str | None
    accounts: tuple[str, ...]
    script: str


def build_transaction(args: SendArgs, chain_nonce: int | None = None) -> tuple[Transaction, Devnet | None]:
    """The signed transaction the options describe (and the devnet, to record its nonce once sent).

    Only local checks here: the node checks the rest (TX-1, GAS-1, ...) and says so in its receipt.
    ``chain_nonce`` is the sender's last nonce on chain as a node reports it: without
    ``--nonce`` the transaction takes one past it (or past the devnet's record, if higher).
    """
    devnet = Devnet.load(args.devnet) if args.devnet is not None else None
    key, sender = resolve_signer(devnet, args.from_name, args.key_seed, args.key_file, args.sender)
    resolve = devnet.resolve if devnet is not None else hex_id
    payer = sender if args.payer is None else resolve(args.payer, "--payer")
    aliases: dict[str, bytes] = {}
    for spec in args.accounts:
        alias, sep, value = spec.partition("=")
        if not sep or not alias.isidentifier():
            raise InputError(f"--account {spec!r}: write ALIAS=ACCOUNT, ALIAS a name the script uses (e.g. a=alice or a=5f1c...)")
        if alias in aliases:
            raise InputError(f"--account {spec!r}: alias {alias!r} is given twice")
        aliases[alias] = resolve(value, f"--account {alias}")
    if not args.script.strip():
        raise InputError("--script is empty; give the SagaPython the transaction runs, e.g. \"a.pay(b, 10)\"")
    nonce = args.nonce if args.nonce is not None else next_nonce(devnet, sender, chain_nonce)
    tx = make_transaction(key=key, sender=sender, nonce=nonce, gas_limit=args.gas_limit, gas_payer=payer, accounts=aliases, script=args.script)
    return tx, devnet


def resolve_signer(devnet: Devnet | None, from_name: str | None, key_seed: str | None, key_file: Path | None, sender: str | None) -> tuple[KeyPair, bytes]:
    """The key that signs and the account it signs as, from ``--devnet/--from``, or a seed and ``--sender``."""
    if from_name is not None and devnet is None:
        raise InputError(f"--from {from_name}: names need --devnet DIR (or give --sender and --key-seed/--key-file)")
    if (key_seed is not None) + (key_file is not None) + (from_name is not None) != 1:
        raise InputError("give exactly one of --key-seed HEX, --key-file PATH, or --devnet DIR --from NAME: the key that signs")
    if devnet is not None and from_name is not None:
        chosen = devnet.account(from_name, "--from")
        if sender is not None and devnet.resolve(sender, "--sender") != chosen.id:
            raise InputError(f"--sender {sender} differs from --from {from_name}; give one of them")
        return KeyPair(chosen.seed), chosen.id
    if sender is None:
        raise InputError("--sender ACCOUNT_ID_HEX is required with --key-seed/--key-file (the account that signs)")
    key = KeyPair(_read_seed(key_seed, key_file))
    return key, devnet.resolve(sender, "--sender") if devnet else hex_id(sender, "--sender")


def next_nonce(devnet: Devnet | None, sender: bytes, chain_nonce: int | None) -> int:
    """One past the sender's last nonce: the node's final one (``chain_nonce``), or the devnet's record if higher."""
    if devnet is None and chain_nonce is None:
        raise InputError("--nonce N is required when the node's last nonce for the sender is not known; "
                         "give one above the sender's last (1 for a fresh account)")
    return max(devnet.last_nonce(sender) if devnet is not None else 0, chain_nonce or 0) + 1


def _read_seed(seed_hex: str | None, key_file: Path | None) -> bytes:
    where = "--key-seed" if seed_hex is not None else f"--key-file {key_file}"
    if key_file is not None:
        try:
            seed_hex = key_file.read_text().strip()
        except OSError as exc:
            raise InputError(f"{where}: cannot read it: {exc.strerror}") from None
    try:
        seed = bytes.fromhex(seed_hex or "")
    except ValueError:
        seed = b""
    if len(seed) != ID_SIZE:
        raise InputError(f"{where}: an Ed25519 seed is {2 * ID_SIZE} hex digits")
    return seed
