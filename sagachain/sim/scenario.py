"""The scenario API: what a researcher's scenario file calls.

A scenario file is a Python module with a ``build(s: Scenario)`` function that
declares shards, enclaves, classes, accounts, transactions and misbehaviour.
What the chain holds (shards, enclaves, classes, accounts, identities,
transactions, chain parameters) is declared with the methods ``Scenario``
inherits from ``sagachain.world.declarations.Declarations``, below both
drivers, because a devnet declares its chain the same way; this module adds
what only a simulated run has: timing, network, costs, crypto mode, faults,
placement, scaling, the committee model, roster actions and mail. Declaring
records intent only; ``sagachain.world.build`` turns the declarations into a
genesis and ``sagachain.sim.runner`` runs them. ``s.rng`` is the run's only
random source, seeded from ``--seed``, so a scenario that draws from it stays
reproducible.

Times are virtual milliseconds from the start of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sagachain.core.genesis import Params
from sagachain.sim.costs import CostModel
from sagachain.sim.mail_scenario import MailAction, MailDeclarations
from sagachain.sim.network import NetworkModel, Uniform
from sagachain.sim.roster_actions import ACTION, churn_plan, roster_action
from sagachain.sim.scaling import ScalingPolicy
from shards.placement import LookAhead, Placement
from shards.lies import LIES as LIE_KINDS
from sagachain.errors import InputError
from sagachain.world.declarations import MODELLED, REAL, Declarations

COLLUSIONS = ("overmint", "leak_state", "wrong_gas", "steal_account", "cross_enclave", "strict_deploy", "withhold")
LIES = tuple(LIE_KINDS)  # one lying proposer among honest members (shards.lies)
MEMBER_FAULTS = ("equivocate", "silent")  # one byzantine member; needs the members committee model
MISBEHAVIOURS = COLLUSIONS + LIES + MEMBER_FAULTS
QUORUM_COUNT, MEMBERS = "modelled", "members"  # committee models (sagachain.sim.members)
COMMITTEE_MODELS = (QUORUM_COUNT, MEMBERS)


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


class Scenario(Declarations, MailDeclarations):
    """Declarations of one simulated run. See the module docstring; the chain's declarations
    (``public_shards``, ``enclave``, ``account``, ``transaction``, ...) are in
    ``sagachain.world.declarations``, the mail declarations (``dm``, ``group_dm``, ``device``,
    ...) in ``sagachain.sim.mail_scenario``."""

    def __init__(self, seed: int, name: str = "scenario", settings: dict[str, str] | None = None) -> None:
        super().__init__(seed, name, settings)
        self.timing = Timing()
        self.mail_actions: list[MailAction] = []  # DMs, group DMs, devices, enclave mail (sagachain.sim.mail)
        self.misbehaviours: list[Misbehaviour] = []
        self.scheduled: list[Scheduled] = []
        self.network_model: NetworkModel | None = None
        self.placement_strategy: Placement = LookAhead()
        self.scaling_policy: ScalingPolicy | None = None
        self.cost_model = CostModel()
        self.committee_model = QUORUM_COUNT

    def needs_real_keys(self) -> bool:
        """Also roster actions: a membership change seals epoch keys to X25519 keys (MEM-3)."""
        return super().needs_real_keys() or any(i.action == ACTION for i in self.scheduled)

    # -- run settings ------------------------------------------------------------

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

    def committees(self, model: str) -> None:
        """``modelled`` (default): a committee is a quorum count, its votes signed at once, for
        large runs. ``members``: every member runs the node's consensus machine
        (``shards.committee.CommitteeMachine``) over the simulated network, so crashes, rounds,
        locks, timeouts and byzantine members are the real protocol's (``sagachain.sim.members``)."""
        if model not in COMMITTEE_MODELS:
            raise InputError(f"committee model {model!r}: choose one of {list(COMMITTEE_MODELS)}")
        self.committee_model = model

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

    def scaling(self, target_ms: int, low_ms: int, **policy: int) -> None:
        """Add and remove public shards from the pool as the queue wait crosses ``target_ms`` / ``low_ms`` (SH-2)."""
        self.scaling_policy = ScalingPolicy(target_ms=target_ms, low_ms=low_ms, **policy)

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

    # -- operators and adversaries ----------------------------------------------

    def misbehave(self, shard: str, kind: str, at_height: int = 1, count: int = 1, target: str | None = None) -> None:
        """Make ``shard``'s committee collude in ``kind`` from ``at_height``, ``count`` blocks long.

        A kind of ``LIES`` is one member lying instead: the member proposing
        ``at_height`` in its first round tampers its next ``count`` proposals
        that hold something to lie about, and the honest members refuse them
        (TX-6), so the next round's proposer builds the height.

        A kind of ``MEMBER_FAULTS`` needs ``s.committees("members")``: the member
        proposing ``at_height`` in its first round, for ``count`` heights, either
        proposes two different blocks to the two halves of its committee
        (``equivocate``) or sends nothing at all (``silent``)."""
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

    def partition_members(self, at: int, shard: str, *groups: list[int]) -> None:
        """Split ``shard``'s committee at ``at``: members (by their place in the committee, 0..n-1)
        hear only their own group until ``heal``. Needs ``s.committees("members")``."""
        if shard not in self.shard_ids():
            raise InputError(f"partition_members names unknown shard {shard!r}; shards: {self.shard_ids()}")
        named = [i for g in groups for i in g]
        if len(named) != len(set(named)) or any(not isinstance(i, int) or i < 0 for i in named):
            raise InputError(f"partition_members groups {groups} must name distinct member places 0, 1, ...")
        self.scheduled.append(Scheduled(at, "split", {"shard": shard, "groups": [list(g) for g in groups]}))

    def heal(self, at: int) -> None:
        """End the partitions at ``at`` (of shards and of members); held messages are delivered."""
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

