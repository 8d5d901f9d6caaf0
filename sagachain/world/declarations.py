"""Declarations: the shards, enclaves, classes, accounts, identities and transactions of a chain.

This is the part of a scenario that says what the chain holds, not how a run
unfolds. It lives below both drivers because both start from it: a simulated
run (``sagachain.sim.scenario.Scenario`` extends it with timing, network,
faults and the other simulation settings) and a devnet (``node.devnet``
declares its shards and accounts here and builds its genesis with
``sagachain.world.build``). Declaring records intent only; the world builder
turns the declarations into a genesis. ``rng`` is the only random source,
seeded from the seed, so declarations that draw from it stay reproducible.

Times are virtual milliseconds from the start of the run; a devnet's load
reads them as wall-clock milliseconds from its start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sagachain.core.epoch_keys import SEAL_TO_ALL, STRATEGIES
from sagachain.core.genesis import Params
from sagachain.core.roster import BURN_ON_READ, KIND_TEMPLATES, KINDS, RETENTIONS, SHARED
from sagachain.errors import InputError

REAL, MODELLED = "real", "modelled"  # crypto modes: compute every signature, or model them


@dataclass
class ClassDecl:
    name: str
    code: str
    base: str | None
    private: bool
    enclave: str | None
    owner: str | None


@dataclass
class AccountDecl:
    name: str
    cls: str | None
    balance: int
    enclave: str | None
    shard: str | None
    fields: dict[str, Any]


@dataclass
class TxDecl:
    at: int
    sender: str
    script: str
    accounts: dict[str, str]
    payer: str
    gas_limit: int


@dataclass(frozen=True)
class IdentityDecl:
    """An identity with its devices and its mailbox's retention (MBX-1, MBX-2, REG-1).
    ``spare`` device accounts exist from genesis but are not registered in the mailbox."""

    name: str
    devices: tuple[str, ...]
    retention: str
    ttl_ms: int
    spare: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnclaveSetup:
    """How an enclave's roster starts: its kind (a hint), key strategy and join policy."""

    kind: str
    key_strategy: str
    auto_join: bool
    members: int = 0  # founding MEMBERs beyond the committee nodes: keys and state, no seat
    operator_balance: int = 0  # SagaCoin of <enclave>.operator, which signs and pays for roster transactions


def member_names(d: Declarations, enclave: str) -> list[str]:
    """The enclave's founding seatless MEMBERs (``d.enclave(..., members=k)``), as the world names them."""
    return [f"{enclave}-m{i}" for i in range(d.enclave_setup[enclave].members)]


class Declarations:
    """What a chain holds at genesis and which transactions are sent to it. See the module docstring."""

    def __init__(self, seed: int, name: str = "scenario", settings: dict[str, str] | None = None) -> None:
        self.seed = seed
        self.name = name
        self.settings = dict(settings or {})  # --set name=value from the command line
        self.used: dict[str, Any] = {}  # every param() asked for, with the value it got
        self.rng = random.Random(seed)
        self.params = Params()
        self.public: list[tuple[str, int]] = []
        self.dormant: list[str] = []  # public shards of the pool not live at the start (SH-2)
        self.enclaves: dict[str, tuple[list[str], int]] = {}
        self.enclave_setup: dict[str, EnclaveSetup] = {}
        self.identities: dict[str, IdentityDecl] = {}
        self.classes: list[ClassDecl] = []
        self.accounts: dict[str, AccountDecl] = {}
        self.txs: list[TxDecl] = []
        self.crypto = REAL  # the keys the world makes; only a simulation models them (Scenario.crypto_mode)

    # -- parameters --------------------------------------------------------------

    def param(self, name: str, default: Any) -> Any:
        """A value the command line may set (``--set name=value``, or a sweep's ``--grid``).

        The value given is converted to the type of ``default`` (int, float,
        bool or str), so a scenario reads ``s.param("load", 100)`` and gets an int.
        """
        raw = self.settings.get(name)
        value = default if raw is None else _convert(name, raw, default)
        self.used[name] = value
        return value

    def unused_settings(self) -> list[str]:
        """Settings given on the command line that the scenario never asked for (likely typos)."""
        return sorted(set(self.settings) - set(self.used))

    def needs_real_keys(self) -> bool:
        """Whether something declared seals epoch keys to X25519 keys, which modelled keys are not
        (MEM-3): here the seatless founding members; a scenario adds its roster actions."""
        return any(e.members for e in self.enclave_setup.values())

    # -- topology ----------------------------------------------------------------

    def public_shards(self, count: int, nodes: int = 4, active: int | None = None) -> list[str]:
        """Declare ``count`` public shards with ``nodes`` committee nodes each.

        With ``active`` fewer than ``count``, only that many take part at the
        start; the rest are the pool ``s.scaling`` may add (SH-2).
        """
        if active is not None and not 1 <= active <= count:
            raise InputError(f"active={active} must be between 1 and the {count} shards declared")
        ids = [f"P{len(self.public) + i}" for i in range(count)]
        self.public.extend((sid, nodes) for sid in ids)
        self.dormant.extend(ids[active if active is not None else count :])
        return ids

    def initially_live(self) -> list[str]:
        """Public shards taking part from the start."""
        return [sid for sid, _ in self.public if sid not in self.dormant]

    def shard_ids(self) -> list[str]:
        return [sid for sid, _ in self.public] + [sid for ids, _ in self.enclaves.values() for sid in ids]

    def enclave(
        self,
        name: str,
        shards: int = 1,
        nodes: int = 4,
        kind: str = SHARED,
        key_strategy: str = SEAL_TO_ALL,
        auto_join: bool | None = None,
        members: int = 0,
        operator_balance: int = 0,
    ) -> list[str]:
        """Declare an enclave with its own shards (SH-3: enclave shards are explicit).

        Its genesis roster (MEM-1) seats the ``nodes`` of each shard as MEMBERs;
        the first node of the first shard is the owner and an admin. ``kind``
        picks the policy template (REG-1: a hint, never itself a security
        decision); ``key_strategy`` is how epoch keys reach the members (MEM-3):
        ``seal-to-all`` or ``key-tree``. ``members`` more founding MEMBERs
        (``<name>-m0``, ...) hold the keys and the state but sit on no committee;
        ``operator_balance`` funds ``<name>.operator``, the account that signs and
        pays for the roster transactions of ``s.roster`` and ``s.churn``.
        """
        if members < 0 or operator_balance < 0:
            raise InputError(f"enclave {name!r}: members={members} and operator_balance={operator_balance} must not be negative", rule="MEM-1")
        if name in self.enclaves or not name.isidentifier():
            raise InputError(f"enclave name {name!r} must be a new identifier")
        if kind not in KINDS:
            raise InputError(f"enclave {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}", rule="REG-1")
        if key_strategy not in STRATEGIES:
            raise InputError(f"enclave {name!r}: key_strategy {key_strategy!r} is not one of {', '.join(STRATEGIES)}", rule="MEM-3")
        ids = [f"{name}/{i}" for i in range(shards)]
        self.enclaves[name] = (ids, nodes)
        template = KIND_TEMPLATES[kind]
        self.enclave_setup[name] = EnclaveSetup(kind, key_strategy, template.auto_join if auto_join is None else auto_join, members, operator_balance)
        return ids

    # -- classes and accounts ----------------------------------------------------

    def open_class(self, name: str, code: str, base: str | None = "ClassAccount") -> str:
        self.classes.append(ClassDecl(name, code, base, False, None, None))
        return name

    def private_class(self, enclave: str, name: str, code: str, owner: str, base: str | None = None) -> str:
        """A private class of ``enclave`` (CLS-1): code off chain, owned by enclave account ``owner``."""
        self._need_enclave(enclave)
        self.classes.append(ClassDecl(name, code, base or f"EnclaveAccount_{enclave}", True, enclave, owner))
        return name

    def account(self, name: str, balance: int = 0, cls: str = "ClassAccount", shard: str | None = None, **fields: Any) -> str:
        """A public account with ``balance`` SagaCoin."""
        self._new_account(AccountDecl(name, cls, balance, None, shard, dict(fields)))
        return name

    def enclave_account(self, enclave: str, name: str, cls: str | None = None, shard: str | None = None, **fields: Any) -> str:
        """An enclave account (OBJ-3); its fields stay off chain (TX-3)."""
        self._need_enclave(enclave)
        self._new_account(AccountDecl(name, cls, 0, enclave, shard, dict(fields)))
        return name

    def identity(
        self, name: str, devices: int = 2, balance: int = 100_000, retention: str = BURN_ON_READ, ttl_ms: int = 60_000, spare_devices: int = 0
    ) -> list[str]:
        """An identity (a public account) with ``devices`` device accounts and a mailbox (MBX-1)
        under ``retention`` (MBX-2), registered in the registry (REG-1). Returns the device
        account names (``name.dev0``, ...); the mailbox is ``name.mailbox``. ``spare_devices``
        more device accounts (numbered after those) exist unregistered, for ``s.device(at, name, "add")``."""
        if retention not in RETENTIONS:
            raise InputError(f"identity {name!r}: retention {retention!r} is not one of {', '.join(RETENTIONS)}", rule="MBX-2")
        if devices < 1 or ttl_ms < 0 or spare_devices < 0:
            raise InputError(f"identity {name!r}: needs at least one device, a non-negative ttl_ms and spare_devices", rule="MBX-2")
        self.account(name, balance=balance)
        names = [self.account(f"{name}.dev{i}") for i in range(devices)]
        spare = [self.account(f"{name}.dev{i}") for i in range(devices, devices + spare_devices)]
        self.identities[name] = IdentityDecl(name, tuple(names), retention, ttl_ms, tuple(spare))
        return names

    def _new_account(self, decl: AccountDecl) -> None:
        if decl.name in self.accounts:
            raise InputError(f"account {decl.name!r} is declared twice")
        self.accounts[decl.name] = decl

    def _need_enclave(self, enclave: str) -> None:
        if enclave not in self.enclaves:
            raise InputError(f"unknown enclave {enclave!r}; declare it with s.enclave({enclave!r}, ...) first")

    # -- workload ------------------------------------------------------------------

    def transaction(
        self,
        at: int,
        sender: str,
        script: str,
        accounts: dict[str, str] | None = None,
        payer: str | None = None,
        gas_limit: int = 20_000,
    ) -> None:
        """Submit ``script`` signed by ``sender`` at time ``at``; ``accounts`` maps alias -> account."""
        accounts = dict(accounts or {})
        self.txs.append(TxDecl(at, sender, script, accounts, payer or sender, gas_limit))

    def random_transfers(self, count: int, start: int, end: int, accounts: list[str] | None = None, amount: tuple[int, int] = (1, 20)) -> None:
        """``count`` open transfers between random public accounts, spread over [start, end)."""
        pool = accounts or [a.name for a in self.accounts.values() if a.enclave is None and a.balance > 0]
        if len(pool) < 2:
            raise InputError("random_transfers needs at least two funded public accounts")
        for _ in range(count):
            src, dst = self.rng.sample(pool, 2)
            value = self.rng.randint(*amount)
            self.transaction(self.rng.randrange(start, end), src, f"src.pay(dst, {value})", {"src": src, "dst": dst})


def _convert(name: str, raw: str, default: Any) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind in (int, float, str):
            return kind(raw)
    except ValueError:
        raise InputError(f"setting {name}={raw!r} is not of type {kind.__name__}, as the scenario's default {default!r} is") from None
    raise InputError(f"setting {name}: the scenario's default {default!r} is not an int, float, bool or str")
