"""Workload generators: many transactions added to declarations with a few calls.

A scenario file that wants "2,000 transfers, Zipf-skewed, with a burst at
t=5s" should not have to write the sampling loop itself, and two scenario
files asking for the same thing should get the same thing. Every generator
here draws only from the scenario's seeded ``s.rng`` (never from the global
``random`` module), so the same seed gives the same list of transactions,
and a different seed gives a different but equally shaped workload.

Three independent choices make up a workload:

* **who**: a popularity (:class:`Uniform`, :class:`Zipf`, :class:`Hot`) says
  how likely each account is to be drawn;
* **when**: an arrival shape (:class:`Steady`, :class:`Burst`,
  :class:`Poisson`) gives the submission times;
* **what**: :func:`transfers`, :func:`hot_spot` and :func:`mix` build the
  scripts; ``sagachain.world.traces.replay_trace`` takes them verbatim from a CSV file.

Every generator returns the :class:`TxDecl` values it appended to ``s.txs``,
so a scenario can inspect or count what it asked for. See docs/WORKLOADS.md.

The generators take only ``Declarations``, below both drivers: a simulated
scenario and a devnet's load (``node.devnet_load``) draw the same shapes of
transactions from the same calls.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from sagachain.errors import InputError
from sagachain.world.declarations import Declarations, TxDecl

# Weights are integers so that drawing is exact: a float cumulative sum can
# round so that an account's interval is empty or overlaps its neighbour's.
# 2**40 keeps the smallest Zipf weight of a 10**6-account pool far above 1.
_SCALE = 2**40

Amount = tuple[int, int]
Script = str | Callable[[str, int], str]
"""A script template: a format string with ``{account}`` (the enclave
account's name) and ``{amount}``, or a function of those two returning the
script. A function lets a scenario call a different method per account class."""


# -- popularity ------------------------------------------------------------------


@dataclass(frozen=True)
class Chooser:
    """Draws account names with fixed integer weights (a bisect over their running sum).

    Built once per generator call by a :class:`Popularity`, so the skew (and
    any seeded ranking) is decided once and then shared by every draw.
    """

    names: tuple[str, ...]
    weights: tuple[int, ...]
    cumulative: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.weights):
            raise InputError(f"a chooser needs one weight per account: {len(self.names)} names, {len(self.weights)} weights")
        if not any(w > 0 for w in self.weights):
            raise InputError(f"all {len(self.names)} accounts have weight 0; give at least one a positive weight")
        object.__setattr__(self, "cumulative", tuple(accumulate(self.weights)))

    def pick(self, rng: random.Random) -> str:
        """One name, drawn with probability proportional to its weight."""
        return self.names[bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]

    def pair(self, rng: random.Random) -> tuple[str, str]:
        """Two distinct names: a sender, then a receiver drawn from the weights with the sender left out.

        Leaving the sender's interval out of the second draw (rather than
        redrawing until another name comes up) keeps the cost fixed even when
        one account holds nearly all the weight, as under a steep Zipf.
        """
        index = bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))
        weight = self.weights[index]
        rest = self.cumulative[-1] - weight
        if rest == 0:
            raise InputError(f"only {self.names[index]!r} of {len(self.names)} accounts can be drawn, so no distinct pair exists; widen the pool or lower the hot share")
        point = rng.randrange(rest)
        if point >= self.cumulative[index] - weight:
            point += weight
        return self.names[index], self.names[bisect_right(self.cumulative, point)]

    def ranking(self) -> list[str]:
        """The names from most to least likely (ties in list order): the hot accounts first."""
        order = sorted(range(len(self.names)), key=lambda i: -self.weights[i])
        return [self.names[i] for i in order]


class Popularity(ABC):
    """How likely each account is to take part in a transaction."""

    @abstractmethod
    def weights(self, rng: random.Random, names: Sequence[str]) -> list[int]:
        """Integer weights aligned with ``names``; may draw from ``rng`` (e.g. to rank them)."""

    def over(self, rng: random.Random, names: Sequence[str]) -> Chooser:
        """A chooser over ``names`` with this popularity."""
        return Chooser(tuple(names), tuple(self.weights(rng, names)))


@dataclass(frozen=True)
class Uniform(Popularity):
    """Every account equally likely: the baseline that skewed workloads are compared with."""

    def weights(self, rng: random.Random, names: Sequence[str]) -> list[int]:
        return [1] * len(names)


@dataclass(frozen=True)
class Zipf(Popularity):
    """Rank ``r`` (1-based) is drawn with probability proportional to ``1 / r**exponent``.

    Real ledgers have a few very busy accounts (exchanges, popular contracts)
    and a long tail. Which account gets which rank is a shuffle drawn from the
    scenario's rng: a result then does not hinge on the accident of which
    account was declared first, and repeating a run with another seed checks
    that it does not hinge on which accounts are hot either.
    ``exponent=0`` is uniform; around 1 is the classic Zipf law.
    """

    exponent: float = 1.0

    def __post_init__(self) -> None:
        if not self.exponent >= 0:
            raise InputError(f"Zipf exponent {self.exponent!r} must be a number >= 0 (0 is uniform, 1 the classic law)")

    def weights(self, rng: random.Random, names: Sequence[str]) -> list[int]:
        ranks = list(range(1, len(names) + 1))
        rng.shuffle(ranks)
        # max(1, ...): a steep exponent must not give the tail a zero chance,
        # or the account could never appear and a pair could become impossible.
        return [max(1, round(_SCALE / rank**self.exponent)) for rank in ranks]


@dataclass(frozen=True)
class Hot(Popularity):
    """A small hot set takes ``share`` of all draws; the other accounts share the rest evenly.

    ``hot`` is either the hot accounts' names, or how many to pick from the
    pool with the scenario's rng. Give names when the analysis needs to know
    which accounts were hot.
    """

    hot: int | tuple[str, ...]
    share: float = 0.9

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise InputError(f"Hot share {self.share!r} must be between 0 and 1 (the fraction of draws that land on the hot set)")
        if isinstance(self.hot, int) and self.hot < 1:
            raise InputError(f"Hot hot={self.hot} must be at least 1 account, or a tuple of account names")

    def weights(self, rng: random.Random, names: Sequence[str]) -> list[int]:
        if isinstance(self.hot, int):
            if self.hot >= len(names):
                raise InputError(f"Hot hot={self.hot} must be smaller than the pool of {len(names)} accounts, or nothing is cold")
            hot = set(rng.sample(list(names), self.hot))
        else:
            hot = set(self.hot)
            missing = sorted(hot - set(names))
            if missing:
                raise InputError(f"Hot accounts {missing} are not in the pool of {len(names)} accounts; pick hot accounts from the pool (accounts=...)")
        cold = len(names) - len(hot)
        hot_weight = round(_SCALE * self.share / len(hot))
        cold_weight = round(_SCALE * (1 - self.share) / cold) if cold else 0
        return [hot_weight if name in hot else cold_weight for name in names]


# -- arrival times ---------------------------------------------------------------


class Arrivals(ABC):
    """When transactions are submitted, in virtual milliseconds."""

    @abstractmethod
    def times(self, rng: random.Random, count: int, start: int, end: int) -> list[int]:
        """Submission times in [start, end), sorted, at most ``count`` of them."""


@dataclass(frozen=True)
class Steady(Arrivals):
    """``count`` times drawn uniformly over [start, end): a constant average load."""

    def times(self, rng: random.Random, count: int, start: int, end: int) -> list[int]:
        return sorted(rng.randrange(start, end) for _ in range(count))


@dataclass(frozen=True)
class Burst(Arrivals):
    """``share`` of the transactions arrive in [at, at + width); the rest spread over [start, end).

    A burst shows how queues, block sizes and latency recover from a sudden
    load, which a steady load with the same total never exercises.
    """

    at: int
    width: int
    share: float = 0.5

    def __post_init__(self) -> None:
        if self.width < 1:
            raise InputError(f"Burst width={self.width} must be at least 1 ms")
        if not 0 <= self.share <= 1:
            raise InputError(f"Burst share={self.share!r} must be between 0 and 1 (the fraction of transactions in the burst)")

    def times(self, rng: random.Random, count: int, start: int, end: int) -> list[int]:
        if self.at < start or self.at + self.width > end:
            raise InputError(f"Burst window [{self.at}, {self.at + self.width}) must lie inside the workload's [{start}, {end}); move at= or shrink width=")
        inside = round(count * self.share)
        burst = [rng.randrange(self.at, self.at + self.width) for _ in range(inside)]
        return sorted(burst + Steady().times(rng, count - inside, start, end))


@dataclass(frozen=True)
class Poisson(Arrivals):
    """A Poisson process of ``rate`` transactions per virtual second, from ``start`` until ``end``.

    Gaps are exponential, so arrivals clump and thin out the way independent
    users' do. The rate, not ``count``, sets how many arrive: ``count`` is
    only a cap, so pass a large one to let the rate decide. The generators
    return what they added, which says how many there were.
    """

    rate: float

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise InputError(f"Poisson rate={self.rate!r} must be > 0 transactions per second")

    def times(self, rng: random.Random, count: int, start: int, end: int) -> list[int]:
        times: list[int] = []
        now = float(start)
        while len(times) < count:
            now += rng.expovariate(self.rate / 1000)
            if now >= end:
                break
            times.append(int(now))
        return times


# -- generators ------------------------------------------------------------------


def transfers(
    s: Declarations,
    count: int,
    start: int,
    end: int,
    popularity: Popularity = Uniform(),
    accounts: Sequence[str] | None = None,
    amount: Amount = (1, 20),
    arrivals: Arrivals = Steady(),
) -> list[TxDecl]:
    """Open transfers ``src.pay(dst, n)`` between distinct public accounts, signed by the payer.

    Sender and receiver are both drawn with ``popularity``, so under a skew a
    hot account both sends and receives a lot: it is the contention on its
    shard, not its balance, that the workload is meant to stress.
    ``accounts`` defaults to every funded public account.
    """
    pool = _public_pool(s, accounts, "transfers")
    _check_window("transfers", count, start, end, amount)
    chooser = popularity.over(s.rng, pool)
    added = []
    for at in arrivals.times(s.rng, count, start, end):
        added.append(_transfer(s, at, *chooser.pair(s.rng), s.rng.randint(*amount)))
    return added


def hot_spot(
    s: Declarations,
    count: int,
    start: int,
    end: int,
    hot: int | Sequence[str] = 2,
    share: float = 0.9,
    accounts: Sequence[str] | None = None,
    amount: Amount = (1, 20),
    arrivals: Arrivals = Steady(),
) -> list[TxDecl]:
    """Transfers in [start, end) where a few ``hot`` accounts take ``share`` of the traffic.

    Layered over a background workload, this is a flash crowd: for a while
    one or two accounts (and the shards that own them) are suddenly where
    almost everything happens. Each end of each transfer is a hot account
    with probability about ``share``.
    """
    chosen = hot if isinstance(hot, int) else (hot,) if isinstance(hot, str) else tuple(hot)
    return transfers(s, count, start, end, Hot(chosen, share), accounts, amount, arrivals)


def mix(
    s: Declarations,
    count: int,
    start: int,
    end: int,
    open: float = 0.6,
    enclave: float = 0.3,
    mixed: float = 0.1,
    enclave_accounts: Sequence[str] | None = None,
    public_accounts: Sequence[str] | None = None,
    popularity: Popularity = Uniform(),
    enclave_script: Script = "v.record({amount})",
    mixed_script: Script = "v.payout(src, dst, {amount})",
    amount: Amount = (1, 20),
    arrivals: Arrivals = Steady(),
) -> list[TxDecl]:
    """Open, enclave and mixed transactions in the given shares of the total.

    The counts per kind are the shares applied to the number of arrivals
    (largest remainders, so they add up), and the kinds are then shuffled
    over the arrival times: seeds then differ in order, not in how much of
    each kind a run carries, so results of different seeds stay comparable.

    * open: ``src.pay(dst, amount)`` between public accounts;
    * enclave: ``enclave_script`` on alias ``v`` (an enclave account), signed
      and paid for by a public account;
    * mixed: ``mixed_script`` with aliases ``v``, ``src`` and ``dst``, signed by ``src``.

    The default scripts fit the ``Treasury`` class of scenarios/quickstart.py;
    pass templates (see :data:`Script`) for the methods your classes have.
    ``enclave_accounts`` defaults to every enclave account with a class;
    ``public_accounts`` to every funded public account. Both are drawn with
    ``popularity``.
    """
    shares = {"open": open, "enclave": enclave, "mixed": mixed}
    if any(not value >= 0 for value in shares.values()) or abs(sum(shares.values()) - 1) > 1e-9:
        raise InputError(f"mix shares open={open}, enclave={enclave}, mixed={mixed} must be >= 0 and add up to 1")
    _check_window("mix", count, start, end, amount)
    public = popularity.over(s.rng, _public_pool(s, public_accounts, "mix"))
    vaults = popularity.over(s.rng, _enclave_pool(s, enclave_accounts)) if enclave + mixed > 0 else None
    times = arrivals.times(s.rng, count, start, end)
    kinds = [kind for kind, n in zip(shares, _apportion(len(times), list(shares.values()))) for _ in range(n)]
    s.rng.shuffle(kinds)
    added = []
    for at, kind in zip(times, kinds):
        src, dst = public.pair(s.rng)
        value = s.rng.randint(*amount)
        if kind == "open" or vaults is None:
            added.append(_transfer(s, at, src, dst, value))
            continue
        vault = vaults.pick(s.rng)
        if kind == "enclave":
            script, aliases = _render(enclave_script, vault, value), {"v": vault}
        else:
            script, aliases = _render(mixed_script, vault, value), {"v": vault, "src": src, "dst": dst}
        s.transaction(at, src, script, aliases)
        added.append(s.txs[-1])
    return added


# -- helpers ---------------------------------------------------------------------


def _transfer(s: Declarations, at: int, src: str, dst: str, value: int) -> TxDecl:
    s.transaction(at, src, f"src.pay(dst, {value})", {"src": src, "dst": dst})
    return s.txs[-1]


def _render(template: Script, account: str, amount: int) -> str:
    if callable(template):
        return template(account, amount)
    try:
        return template.format(account=account, amount=amount)
    except (KeyError, IndexError) as exc:
        raise InputError(f"script template {template!r} uses {exc}; only {{account}} and {{amount}} are filled in (double other braces)") from None


def _apportion(total: int, shares: list[float]) -> list[int]:
    """Split ``total`` by ``shares`` into integers that add up to ``total`` (largest remainders)."""
    exact = [total * share for share in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _check_window(who: str, count: int, start: int, end: int, amount: Amount) -> None:
    if count < 0:
        raise InputError(f"{who}: count={count} must be >= 0")
    if not 0 <= start < end:
        raise InputError(f"{who}: the window start={start}, end={end} must satisfy 0 <= start < end (virtual ms)")
    low, high = amount
    if not 1 <= low <= high:
        raise InputError(f"{who}: amount={amount} must be (low, high) with 1 <= low <= high")


def _public_pool(s: Declarations, accounts: Sequence[str] | None, who: str) -> list[str]:
    if accounts is None:
        pool = [a.name for a in s.accounts.values() if a.enclave is None and a.balance > 0]
    else:
        pool = list(dict.fromkeys(accounts))
        for name in pool:
            decl = s.accounts.get(name)
            if decl is None:
                raise InputError(f"{who}: account {name!r} is not declared; declare it with s.account({name!r}, ...) first")
            if decl.enclave is not None:
                raise InputError(f"{who}: account {name!r} is in enclave {decl.enclave!r}; open transfers need public accounts")
    if len(pool) < 2:
        raise InputError(f"{who} needs at least two funded public accounts, got {pool}; declare them with s.account(name, balance=...)")
    return pool


def _enclave_pool(s: Declarations, accounts: Sequence[str] | None) -> list[str]:
    if accounts is None:
        pool = [a.name for a in s.accounts.values() if a.enclave is not None and a.cls is not None]
    else:
        pool = list(dict.fromkeys(accounts))
        for name in pool:
            decl = s.accounts.get(name)
            if decl is None or decl.enclave is None:
                raise InputError(f"mix: enclave_accounts names {name!r}, which is not a declared enclave account; declare it with s.enclave_account(...)")
    if not pool:
        raise InputError("mix has enclave or mixed shares but no enclave account with a class; declare one with s.enclave_account(..., cls=...) or set enclave=0, mixed=0")
    return pool
