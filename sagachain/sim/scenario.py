"""The scenario API: what a researcher's scenario file calls.

A scenario file is a Python module with a ``build(s: Scenario)`` function that
declares shards, enclaves, classes, accounts, transactions and misbehaviour.
Declaring records intent only; ``sagachain.sim.world`` turns the declarations
into a genesis and ``sagachain.sim.runner`` runs them. ``s.rng`` is the run's
only random source, seeded from ``--seed``, so a scenario that draws from it
stays reproducible.

Times are virtual milliseconds from the start of the run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from sagachain.core.genesis import Params
from sagachain.core.epoch_keys import SEAL_TO_ALL, STRATEGIES
from sagachain.core.roster import BURN_ON_READ, KIND_TEMPLATES, KINDS, RETENTIONS, SHARED
from sagachain.sim.costs import CostModel
from sagachain.sim.mail_scenario import MailAction, MailDeclarations
from sagachain.sim.network import NetworkModel, Uniform
from sagachain.sim.roster_actions import ACTION, churn_plan, roster_action
from sagachain.sim.scaling import ScalingPolicy
from shards.placement import LookAhead, Placement
from shards.lies import LIES as LIE_KINDS
from sagachain.errors import InputError

REAL, MODELLED = "real", "modelled"  # crypto modes: compute every signature, or model them
COLLUSIONS = ("overmint", "leak_state", "wrong_gas", "steal_account", "cross_enclave", "strict_deploy", "withhold")
LIES = tuple(LIE_KINDS)  # one lying proposer among honest members (shards.lies)
MISBEHAVIOURS = COLLUSIONS + LIES


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


@dataclass
class Misbehaviour:
    shard: str
    kind: str
    at_height: int
    count: int
    target: str | None


@dataclass
class Scheduled:
    """An operator action at a time: a class deploy, a rollback, a breakaway."""

    at: int
    action: str
    args: dict[str, Any]


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


@dataclass
class Timing:
    """Virtual-time settings, in ms. ``latency`` and ``jitter`` are the default
    network's uniform latency (latency .. latency + jitter) unless ``s.network``
    sets a model; ``sample`` is the period of the time series in results;
    ``block_txs`` (a count, not a time) caps the transactions of one block."""

    duration: int = 20_000
    block_interval: int = 500
    latency: int = 40
    jitter: int = 10
    sample: int = 1_000
    block_txs: int = 64  # most transactions one block carries: a shard's capacity per block
    state_timeout: int = 2_000  # how long an enclave shard waits for a sibling's off-chain state changes


class Scenario(MailDeclarations):
    """Declarations of one simulated run. See the module docstring; the mail
    declarations (``dm``, ``group_dm``, ``device``, ...) are in ``sagachain.sim.mail_scenario``."""

    def __init__(self, seed: int, name: str = "scenario", settings: dict[str, str] | None = None) -> None:
        self.seed = seed
        self.name = name
        self.settings = dict(settings or {})  # --set name=value from the command line
        self.used: dict[str, Any] = {}  # every param() asked for, with the value it got
        self.rng = random.Random(seed)
        self.params = Params()
        self.timing = Timing()
        self.public: list[tuple[str, int]] = []
        self.enclaves: dict[str, tuple[list[str], int]] = {}
        self.enclave_setup: dict[str, EnclaveSetup] = {}
        self.identities: dict[str, IdentityDecl] = {}
        self.mail_actions: list[MailAction] = []  # DMs, group DMs, devices, enclave mail (sagachain.sim.mail)
        self.classes: list[ClassDecl] = []
        self.accounts: dict[str, AccountDecl] = {}
        self.txs: list[TxDecl] = []
        self.misbehaviours: list[Misbehaviour] = []
        self.scheduled: list[Scheduled] = []
        self.network_model: NetworkModel | None = None
        self.placement_strategy: Placement = LookAhead()
        self.dormant: list[str] = []  # public shards of the pool not live at the start (SH-2)
        self.scaling_policy: ScalingPolicy | None = None
        self.crypto = REAL
        self.cost_model = CostModel()

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

    # -- topology ----------------------------------------------------------------

    def configure(self, **params: Any) -> None:
        """Set chain parameters (``Params`` fields) and timing (``Timing`` fields)."""
        chain_fields = {k: v for k, v in params.items() if k in Params.__dataclass_fields__}
        timing_fields = {k: v for k, v in params.items() if k in Timing.__dataclass_fields__}
        unknown = set(params) - set(chain_fields) - set(timing_fields)
        if unknown:
            known = sorted([*Params.__dataclass_fields__, *Timing.__dataclass_fields__])
            raise InputError(f"unknown setting(s) {sorted(unknown)}; known: {known}")
        self.params = replace(self.params, **chain_fields)
        for key, value in timing_fields.items():
            setattr(self.timing, key, value)

    def network(self, **model: Any) -> None:
        """Set the network model (``NetworkModel`` fields: latency, loss, retry_ms, bandwidth, fanout)."""
        unknown = set(model) - set(NetworkModel.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown network setting(s) {sorted(unknown)}; known: {sorted(NetworkModel.__dataclass_fields__)}")
        self.network_model = NetworkModel(**model)

    def placement(self, strategy: Placement) -> None:
        """Choose the account placement strategy (``shards.placement``: LookAhead, HashHome, Affinity, or your own)."""
        for method in ("wanted", "grant", "home", "observe"):
            if not callable(getattr(strategy, method, None)):
                raise InputError(f"placement {strategy!r} lacks the method {method}(); see shards/placement.py: Placement")
        self.placement_strategy = strategy

    def crypto_mode(self, mode: str) -> None:
        """``real`` (default): Ed25519 signatures are made and checked. ``modelled``: for very
        large runs, keys and signatures are hash stand-ins (``sagachain.core.keys.ModelledKey``)
        whose cost is only charged in virtual time; results say which mode ran."""
        if mode not in (REAL, MODELLED):
            raise InputError(f"crypto mode {mode!r}: choose {REAL!r} or {MODELLED!r}")
        self.crypto = mode

    def costs(self, **figures: float) -> None:
        """Set processing costs charged in virtual time (``CostModel`` fields, microseconds)."""
        unknown = set(figures) - set(CostModel.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown cost(s) {sorted(unknown)}; known: {sorted(CostModel.__dataclass_fields__)}")
        self.cost_model = replace(self.cost_model, **figures)

    def resolved_network(self) -> NetworkModel:
        """The network model of the run: the one set, or uniform ``latency .. latency + jitter``."""
        if self.network_model is not None:
            return self.network_model
        return NetworkModel(latency=Uniform(self.timing.latency, self.timing.latency + self.timing.jitter))

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

    def scaling(self, target_ms: int, low_ms: int, **policy: int) -> None:
        """Add and remove public shards from the pool as the queue wait crosses ``target_ms`` / ``low_ms`` (SH-2)."""
        self.scaling_policy = ScalingPolicy(target_ms=target_ms, low_ms=low_ms, **policy)

    def initially_live(self) -> list[str]:
        """Public shards taking part from the start."""
        return [sid for sid, _ in self.public if sid not in self.dormant]

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

    def roster(self, at: int, enclave: str, op: str, node: str | None = None, seats: list[str] | None = None) -> None:
        """One roster change at ``at`` (MEM-2, MEM-3), signed by the enclave's operator for the node
        (the owner acts as the admin): ``join`` (auto-join if the policy allows, else apply then
        approve), ``invite`` (then the invitee accepts), ``remove``, ``block``, ``rotate`` (a new node
        key), ``grant-admin`` or ``revoke-admin``. ``node`` names the node (see
        ``sagachain.sim.roster_actions``); None picks a fresh name for a join or invite, else a random
        current non-owner member at run time. ``seats``: the enclave shards a joining node sits on."""
        self.scheduled.append(Scheduled(at, ACTION, {"action": roster_action(self, at, enclave, op, node, seats)}))

    def churn(self, enclave: str, start: int, end: int, joins: int = 0, removals: int = 0, rotations: int = 0) -> None:
        """``joins`` joins, ``removals`` removals and ``rotations`` key rotations of random members of
        ``enclave``, at random times in [start, end); the membership driver runs them one at a time."""
        for at, op in churn_plan(self, enclave, start, end, joins, removals, rotations):
            self.roster(at, enclave, op)

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

    # -- operators and adversaries ----------------------------------------------

    def misbehave(self, shard: str, kind: str, at_height: int = 1, count: int = 1, target: str | None = None) -> None:
        """Make ``shard``'s committee collude in ``kind`` from ``at_height``, ``count`` blocks long.

        A kind of ``LIES`` is one member lying instead: the member proposing
        ``at_height`` in its first round tampers its next ``count`` proposals
        that hold something to lie about, and the honest members refuse them
        (TX-6), so the next round's proposer builds the height."""
        if kind not in MISBEHAVIOURS:
            raise InputError(f"unknown misbehaviour {kind!r}; known: {list(MISBEHAVIOURS)}")
        self.misbehaviours.append(Misbehaviour(shard, kind, at_height, count, target))

    def deploy(self, at: int, name: str, code: str, base: str, deployer: str, shard: str | None = None) -> None:
        """Deploy an open class on chain at ``at`` (subject to CLS-3)."""
        self.scheduled.append(Scheduled(at, "deploy", {"name": name, "code": code, "base": base, "deployer": deployer, "shard": shard}))

    def rollback(self, at: int, account: str, back: int = 1) -> None:
        """TX-7: set an enclave account back to its state ``back`` transactions ago."""
        self.scheduled.append(Scheduled(at, "rollback", {"account": account, "back": back}))

    def breakaway(self, at: int, enclave: str) -> None:
        """LIFE-1: the enclave declares it leaves the chain, then stops distributing blocks."""
        self._need_enclave(enclave)
        self.scheduled.append(Scheduled(at, "breakaway", {"enclave": enclave}))

    def partition(self, at: int, *groups: list[str]) -> None:
        """Split the shards into ``groups`` at ``at``; messages between groups wait for ``heal``."""
        known = set(self.shard_ids())
        named = [sid for g in groups for sid in g]
        if set(named) - known or len(named) != len(set(named)):
            raise InputError(f"partition groups {groups} must name distinct shards among {sorted(known)}")
        self.scheduled.append(Scheduled(at, "partition", {"groups": [list(g) for g in groups]}))

    def heal(self, at: int) -> None:
        """End the partition at ``at``; held messages are delivered."""
        self.scheduled.append(Scheduled(at, "heal", {}))

    def crash(self, at: int, shard: str, nodes: int = 1, restart: int | None = None) -> None:
        """Crash ``nodes`` of ``shard``'s committee at ``at`` (and restart them at ``restart``).

        A shard whose live members are no more than two thirds of its
        committee cannot gather a quorum (SH-1) and stops producing blocks.
        """
        if shard not in self.shard_ids():
            raise InputError(f"crash names unknown shard {shard!r}; shards: {self.shard_ids()}")
        self.scheduled.append(Scheduled(at, "crash", {"shard": shard, "nodes": nodes}))
        if restart is not None:
            if restart <= at:
                raise InputError(f"restart at {restart} must come after the crash at {at}")
            self.scheduled.append(Scheduled(restart, "restart", {"shard": shard, "nodes": nodes}))

    def shard_ids(self) -> list[str]:
        return [sid for sid, _ in self.public] + [sid for ids, _ in self.enclaves.values() for sid in ids]


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
