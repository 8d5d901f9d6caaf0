"""The leakage analysis: what the public chain shows of an enclave, and what GAS-3 hides.

Three workloads of enclave acme on top of the same public traffic (same seed):
six cheap ``v.record(1)`` calls, six heavy ones (a 50-step loop each), and
eighteen cheap ones. GAS-3 must charge the cheap and heavy runs alike, while
the script sizes give the heavy one away and the count and timing give the
busy one away.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chainkit import PEOPLE, chain_bytes, simulate, small
from sagachain.analysis.leakage import (
    SETS,
    SIGNALS,
    Observation,
    jaccard_distance,
    ks_critical,
    ks_statistic,
    observe,
    separation,
)
from sagachain.cli_leakage import leakage
from sagachain.core.block import EnclaveEntry, MixedEntry
from sagachain.core.chainfile import ChainFile, read_chain_bytes
from sagachain.sim.scenario import Scenario

CHEAP = "v.record(1)"
HEAVY = "for i in range(50):\n    v.record(i)"


def workload(script: str, count: int) -> Callable[[Scenario], None]:
    """The small scenario plus ``count`` enclave transactions running ``script``, spread over 3..8 s.

    The run lasts 20 s rather than 12 so that every transaction is final
    (some wait for accounts on the move), and the counts compare exactly.
    """

    def build(s: Scenario) -> None:
        small(s)
        s.configure(duration=20_000)
        for i in range(count):
            s.transaction(3_000 + i * 5_000 // count, PEOPLE[i % 4], script, {"v": "vault"})

    return build


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Chain files of the three workloads, written once for the module."""
    out = {}
    for name, build in {"cheap": workload(CHEAP, 6), "heavy": workload(HEAVY, 6), "busy": workload(CHEAP, 18)}.items():
        run = simulate(build)
        folder = tmp_path_factory.mktemp(name)
        path = folder / "chain.sgc"
        path.write_bytes(chain_bytes(folder, run.genesis, run.blocks))
        out[name] = path
    return out


def read(path: Path) -> ChainFile:
    return read_chain_bytes(path.read_bytes())


def acme(path: Path) -> Observation:
    return observe(read(path))["acme"]


def test_counts_match_the_chain(chains: dict[str, Path]) -> None:
    chain = read(chains["cheap"])
    obs = observe(chain)["acme"]
    ours = [b for b in chain.blocks if b.shard in obs.shards]
    entries = [e for b in ours for e in b.entries if isinstance(e, EnclaveEntry | MixedEntry)]
    mixed = [e for e in entries if isinstance(e, MixedEntry)]
    assert set(observe(chain)) == {"acme"}
    for name in ("gas_charged", "at_floor", "gas_over_floor", "script_bytes", "entry_bytes", "mixed"):
        assert len(obs.samples[name]) == len(entries), name
    assert len(entries) >= 6 + 5  # ours plus the small scenario's four records and one payout
    assert obs.samples["gas_charged"] == [e.gas_charged for b in sorted(ours, key=lambda b: (b.shard, b.height)) for e in b.entries if isinstance(e, EnclaveEntry | MixedEntry)]
    assert len(obs.samples["declared_public"]) == len(obs.samples["public_updates"]) == len(mixed) == sum(obs.samples["mixed"])
    for name in ("block_bytes", "block_entries", "block_enclave_txs"):
        assert len(obs.samples[name]) == len(ours), name
    assert sum(obs.samples["block_enclave_txs"]) == len(entries)
    shards_used = {b.shard for b in ours}
    assert len(obs.samples["block_interval"]) == len(ours) - len(shards_used)
    assert len(obs.samples["tx_interarrival"]) == len(entries) - 1
    assert all(t >= 0 for t in obs.samples["tx_interarrival"] + obs.samples["block_interval"])


def test_touched_accounts_are_public_and_named_by_mixed_transactions(chains: dict[str, Path]) -> None:
    chain = read(chains["cheap"])
    obs = observe(chain)["acme"]
    names = {a.id: a.name for a in chain.genesis.accounts}
    enclave_ids = {a.id for a in chain.genesis.accounts if a.enclave is not None}
    assert {names[a] for a in obs.touched} == {"alice", "bob"}  # the payout's two public accounts
    assert not enclave_ids & set(obs.touched)
    assert {names[a] for a in obs.users} == set(PEOPLE)
    assert sum(obs.users.values()) >= len(obs.samples["gas_charged"])


def test_gas3_charge_does_not_separate_cheap_from_heavy_work(chains: dict[str, Path]) -> None:
    cheap, heavy = acme(chains["cheap"]), acme(chains["heavy"])
    apart = separation(cheap, heavy)
    for name in ("gas_charged", "gas_over_floor", "at_floor", "gas_over_open_avg"):
        assert apart[name] == 0.0, name
    # the script is public (TX-3): its size gives the heavy workload away at once
    assert max(heavy.samples["script_bytes"]) == len(HEAVY) > max(cheap.samples["script_bytes"])
    assert apart["script_bytes"] == apart["entry_bytes"] == pytest.approx(6 / 11)  # our six of eleven
    assert cheap.scripts[CHEAP] == 6 + 1 and heavy.scripts[HEAVY] == 6  # and anyone can read it
    assert apart["scripts"] > 0 and apart["touched"] == apart["users"] == 0.0


def test_count_and_timing_give_a_busier_enclave_away(chains: dict[str, Path]) -> None:
    """Volume shows in the sample counts, which KS ignores; the gaps shrink and the shapes shift.

    With a dozen samples a side the KS values stay under the 5 % bound here:
    a short run cannot tell the timing distributions apart, only the volume.
    """
    cheap, busy = acme(chains["cheap"]), acme(chains["busy"])
    apart = separation(cheap, busy)
    assert len(busy.samples["gas_charged"]) == len(cheap.samples["gas_charged"]) + 12
    assert sum(busy.samples["block_enclave_txs"]) == sum(cheap.samples["block_enclave_txs"]) + 12
    mean = {name: sum(o.samples["tx_interarrival"]) / len(o.samples["tx_interarrival"]) for name, o in (("cheap", cheap), ("busy", busy))}
    assert mean["busy"] < mean["cheap"]
    assert apart["tx_interarrival"] > 0 and apart["block_enclave_txs"] > 0


def test_separation_covers_every_signal_with_samples(chains: dict[str, Path]) -> None:
    obs = acme(chains["cheap"])
    itself = separation(obs, obs)
    assert set(itself) == {n for n in SIGNALS if obs.samples[n]} | set(SETS)
    assert all(v == 0.0 for v in itself.values())
    empty = Observation("acme", obs.shards)
    assert set(separation(obs, empty)) == set(SETS)
    assert separation(obs, empty)["touched"] == separation(obs, empty)["scripts"] == 1.0


def test_ks_statistic() -> None:
    assert ks_statistic([3, 1, 2, 2], [2, 3, 2, 1]) == 0.0
    assert ks_statistic([1, 2, 3], [4, 5]) == 1.0
    assert ks_statistic([4, 5], [1, 2, 3]) == 1.0
    assert ks_statistic([1, 2, 3, 4], [3, 4, 5, 6]) == 0.5
    assert ks_statistic([1, 1, 1, 2], [1, 2, 2, 2]) == 0.5  # ties step together
    with pytest.raises(ValueError):
        ks_statistic([], [1])


def test_ks_critical_shrinks_with_samples() -> None:
    assert ks_critical(4, 4) > 0.9
    assert ks_critical(100, 100) < 0.2
    with pytest.raises(ValueError):
        ks_critical(0, 3)


def test_jaccard_distance() -> None:
    assert jaccard_distance([b"a", b"b"], [b"b", b"a"]) == 0.0
    assert jaccard_distance([b"a"], [b"b"]) == 1.0
    assert jaccard_distance([b"a", b"b"], [b"b", b"c"]) == pytest.approx(2 / 3)
    assert jaccard_distance([], []) == 0.0


def test_cli_prints_signals_and_separation(chains: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    group = click.Group(commands=[leakage])
    report = tmp_path / "leakage.json"
    result = runner.invoke(group, ["leakage", str(chains["cheap"]), "--compare", str(chains["heavy"]), "--enclave", "acme", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "gas_charged" in result.output and "separation of enclave acme" in result.output
    document = json.loads(report.read_text())
    assert document["enclaves"]["acme"]["signals"]["gas_charged"]["n"] >= 11
    assert document["compare"]["enclaves"]["acme"]["gas_charged"]["statistic"] == 0.0
    assert document["compare"]["enclaves"]["acme"]["touched"]["critical"] is None
    assert document["enclaves"]["acme"]["scripts"][CHEAP] == 7


def test_cli_errors_and_help(chains: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    group = click.Group(commands=[leakage])
    unknown = runner.invoke(group, ["leakage", str(chains["cheap"]), "--enclave", "nope"])
    assert unknown.exit_code == 2 and "no enclave 'nope'" in unknown.output
    garbage = tmp_path / "garbage.sgc"
    garbage.write_bytes(b"not a chain")
    unreadable = runner.invoke(group, ["leakage", str(garbage)])
    assert unreadable.exit_code == 2 and "not a readable chain file" in unreadable.output
    shown = runner.invoke(group, ["leakage", "--help"])
    assert shown.exit_code == 0
    assert "    sagachain leakage out/light/chain.sgc\n" in shown.output  # the \b block keeps its lines
