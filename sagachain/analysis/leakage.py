"""What an observer of the public chain learns about an enclave.

TX-3 and TX-4 keep an enclave's state and log off the chain, and GAS-3 charges
an enclave transaction the average gas of the open transactions of its block
(never below the rolling floor) so that the fee says nothing about how much
work the enclave did. Everything else about an enclave transaction is still
public: its script, its size, the block and time it landed in, who signed and
paid for it, and, for a mixed transaction, the public accounts it declared and
the public objects it changed.

:func:`observe` reads a chain file as any outsider can and gathers those
signals per enclave, as samples; :func:`separation` measures how well each
signal tells two observations apart (two workloads of the same enclave, or the
same enclave in two chains). A signal that separates two workloads leaks
something about which workload ran; a signal that does not, hides it, at least
as far as these samples can show.

Limits, on purpose: this is a measurement, not a proof. The KS statistic of
small samples is noisy (see :func:`ks_critical`), signals are treated one at a
time (a combination can separate where no single one does), and nothing here
models an observer who also sees the network (message timing, which node
submitted what).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from sagachain.core.block import Block, EnclaveEntry, MixedEntry, OpenEntry, block_to_wire, entry_to_wire
from sagachain.core.chainfile import ChainFile
from sagachain.core.encoding import encode

# The numeric signals, each a list of samples per enclave, and what one sample is.
# The order is the order tables show them in.
SIGNALS: dict[str, str] = {
    "gas_charged": "gas charged, per enclave or mixed transaction (GAS-3)",
    "gas_over_open_avg": "gas charged / average gas of the open transactions of the same block (blocks with open ones only)",
    "gas_over_floor": "gas charged / the block's GAS-3 floor",
    "at_floor": "1 when the charge is exactly the floor, else 0 (its mean is the share charged the floor)",
    "script_bytes": "script length in UTF-8 bytes, per transaction",
    "entry_bytes": "canonical encoded size of the block entry, per transaction",
    "mixed": "1 for a mixed transaction, 0 for an enclave-only one",
    "declared_public": "public accounts a mixed transaction declares, per mixed transaction",
    "public_updates": "public objects a mixed transaction changes, per mixed transaction",
    "block_bytes": "canonical encoded size of each block of the enclave's shards",
    "block_entries": "entries of each block of the enclave's shards",
    "block_enclave_txs": "enclave and mixed transactions of each block of the enclave's shards",
    "block_interval": "time between consecutive blocks of one of the enclave's shards",
    "tx_interarrival": "time between consecutive enclave transactions (block times, all its shards; 0 within a block)",
}

# The set signals: things seen on chain with how often each appears.
SETS: dict[str, str] = {
    "touched": "public accounts declared and public objects updated by mixed transactions",
    "users": "senders and gas payers of every enclave and mixed transaction",
    "scripts": "script texts of every enclave and mixed transaction (TX-3 puts them on chain)",
}

# c(alpha) of the asymptotic two-sample KS test at alpha = 0.05: sqrt(-ln(alpha / 2) / 2).
KS_C_05 = math.sqrt(-math.log(0.025) / 2)


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, mean, min and max of one signal's samples; what a table row shows."""

    n: int
    mean: float
    min: float
    max: float


@dataclass
class Observation:
    """Everything the public chain shows of one enclave, as samples per signal.

    ``samples`` holds one list per name of :data:`SIGNALS` (empty when the
    chain had nothing to measure); ``touched`` and ``users`` count public
    account ids and ``scripts`` script texts (see :data:`SETS`). ``shards``
    are the enclave's shards as the genesis names them, which is public too.
    """

    enclave: str
    shards: tuple[str, ...]
    samples: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SIGNALS})
    touched: Counter[bytes] = field(default_factory=Counter)
    users: Counter[bytes] = field(default_factory=Counter)
    scripts: Counter[str] = field(default_factory=Counter)

    def summary(self, signal: str) -> Summary | None:
        """The signal's summary, or None without samples (a mean of nothing is not zero)."""
        values = self.samples[signal]
        if not values:
            return None
        return Summary(len(values), sum(values) / len(values), min(values), max(values))

    def set_signal(self, name: str) -> Counter[bytes] | Counter[str]:
        """The set signal ``name`` of :data:`SETS`, by name, for code that walks them all."""
        if name not in SETS:
            raise KeyError(f"unknown set signal {name!r}; known: {sorted(SETS)}")
        found: Counter[bytes] | Counter[str] = getattr(self, name)
        return found


def observe(chain: ChainFile) -> dict[str, Observation]:
    """Per enclave of the genesis, the signals its public blocks show.

    A transaction belongs to the enclave whose shard holds its block: TX-4 has
    enclave and mixed transactions execute only there, and the shard's enclave
    is in the genesis. Blocks a chain ignores (a terminated or broken-away
    enclave) are counted all the same: the observer saw them.
    """
    genesis = chain.genesis
    shard_enclave = {s.id: s.enclave for s in genesis.shards if s.enclave is not None}
    enclave_accounts = {a.id for a in genesis.accounts if a.enclave is not None}
    found = {e.id: Observation(e.id, tuple(e.shards)) for e in genesis.enclaves}
    arrivals: dict[str, list[int]] = {name: [] for name in found}
    by_shard: dict[str, list[Block]] = {}
    for block in chain.blocks:
        if block.shard in shard_enclave and shard_enclave[block.shard] in found:
            by_shard.setdefault(block.shard, []).append(block)
    for shard, blocks in by_shard.items():
        enclave = shard_enclave[shard]
        obs = found[enclave]
        blocks.sort(key=lambda b: (b.height, b.header.time))
        for previous, block in zip(blocks, blocks[1:]):
            obs.samples["block_interval"].append(block.header.time - previous.header.time)
        for block in blocks:
            txs = _observe_block(obs, block, enclave_accounts)
            arrivals[enclave].extend([block.header.time] * txs)
    for enclave, times in arrivals.items():
        times.sort()
        found[enclave].samples["tx_interarrival"].extend(b - a for a, b in zip(times, times[1:]))
    return found


def _observe_block(obs: Observation, block: Block, enclave_accounts: set[bytes]) -> int:
    """Add one block's samples to ``obs``; return how many enclave transactions it holds."""
    samples = obs.samples
    header = block.header
    open_gas = [e.gas_used for e in block.entries if isinstance(e, OpenEntry)]
    open_avg = sum(open_gas) / len(open_gas) if open_gas else None
    ours = [e for e in block.entries if isinstance(e, EnclaveEntry | MixedEntry)]
    for entry in ours:
        samples["gas_charged"].append(entry.gas_charged)
        if open_avg:
            samples["gas_over_open_avg"].append(entry.gas_charged / open_avg)
        if header.gas_floor:
            samples["gas_over_floor"].append(entry.gas_charged / header.gas_floor)
        samples["at_floor"].append(1 if entry.gas_charged == header.gas_floor else 0)
        samples["script_bytes"].append(len(entry.tx.script.encode()))
        samples["entry_bytes"].append(len(encode(entry_to_wire(entry))))
        samples["mixed"].append(1 if isinstance(entry, MixedEntry) else 0)
        obs.users.update({entry.tx.sender, entry.tx.gas_payer})
        obs.scripts[entry.tx.script] += 1
        if isinstance(entry, MixedEntry):
            declared = [a for a in entry.tx.account_ids() if a not in enclave_accounts]
            samples["declared_public"].append(len(declared))
            samples["public_updates"].append(len(entry.updates))
            obs.touched.update(declared)
            obs.touched.update(u.id for u in entry.updates)
    samples["block_bytes"].append(len(encode(block_to_wire(block))))
    samples["block_entries"].append(len(block.entries))
    samples["block_enclave_txs"].append(len(ours))
    return len(ours)


def ks_statistic(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs.

    0 means the samples have the same distribution of values (identical
    samples give exactly 0), 1 means every value of one lies below every value
    of the other. It needs no assumption about the distribution's shape, which
    suits gas, sizes and times alike, and handles ties (all the values equal to
    one x step together). Raises ValueError on an empty sample: there is no
    distribution to compare.
    """
    if not xs or not ys:
        raise ValueError("the KS statistic needs at least one sample on each side")
    a, b = sorted(xs), sorted(ys)
    i = j = 0
    gap = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        gap = max(gap, abs(i / len(a) - j / len(b)))
    return gap


def ks_critical(n: int, m: int) -> float:
    """The KS statistic below which samples of sizes n and m are not told apart at alpha = 0.05.

    This is the asymptotic bound c(alpha) * sqrt((n + m) / (n * m)). It is a
    yardstick, not an exact test: with a dozen samples it is already near 0.5,
    and with below about 5 per side it exceeds 1, so no gap counts; for
    discrete signals (gas, counts) with many ties it is conservative.
    """
    if n < 1 or m < 1:
        raise ValueError("sample sizes must be at least 1")
    return KS_C_05 * math.sqrt((n + m) / (n * m))


def jaccard_distance(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    """1 - |A & B| / |A | B|: 0 for the same members, 1 for none in common; two empty sets are the same."""
    first, second = set(a), set(b)
    union = first | second
    if not union:
        return 0.0
    return 1 - len(first & second) / len(union)


def separation(a: Observation, b: Observation) -> dict[str, float]:
    """Per signal, how well it tells ``a`` from ``b``: 0 indistinguishable, 1 perfectly separable.

    Numeric signals get the KS statistic (:func:`ks_statistic`); a signal
    without samples on either side is left out, since nothing can be said of
    it. Set signals get the Jaccard distance of the two sets, ignoring how
    often each member appears. Read a KS value against :func:`ks_critical`
    of the two sample counts, which the observations carry.
    """
    out = {name: ks_statistic(a.samples[name], b.samples[name]) for name in SIGNALS if a.samples[name] and b.samples[name]}
    for name in SETS:
        out[name] = jaccard_distance(a.set_signal(name), b.set_signal(name))
    return out
