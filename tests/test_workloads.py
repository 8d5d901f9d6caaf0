"""Workload generators and traces: reproducible from the seed, shaped as asked, and runnable end to end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sagachain.errors import InputError
from sagachain.sim.runner import Simulation
from sagachain.sim.scenario import Scenario
from sagachain.world import traces
from sagachain.world import workloads as wl
from sagachain.world.build import build_world
from sagachain.world.declarations import TxDecl
from shards.tools import default_tools

TREASURY = '''
class Treasury(EnclaveAccount_acme):
    ALLOW = {"record": "any", "payout": "any"}
    def record(self, amount):
        self.total = self.total + amount
    def payout(self, src, dst, amount):
        src.pay(dst, amount)
        self.paid = self.paid + amount
'''

PEOPLE = [f"user{i:02d}" for i in range(20)]


def populated(seed: int) -> Scenario:
    """Two public shards, 20 funded accounts, an enclave with two Treasury vaults."""
    s = Scenario(seed, name="workloads")
    s.configure(duration=20_000)
    s.public_shards(2, nodes=4)
    s.enclave("acme", shards=1, nodes=4)
    for name in PEOPLE:
        s.account(name, balance=1_000_000)
    s.enclave_account("acme", "acme_admin")
    s.private_class("acme", "Treasury", TREASURY, owner="acme_admin")
    for vault in ("vault_a", "vault_b"):
        s.enclave_account("acme", vault, cls="Treasury", total=0, paid=0)
    return s


def everything(seed: int) -> list[TxDecl]:
    s = populated(seed)
    wl.transfers(s, 50, 0, 5_000, popularity=wl.Zipf(1.1), arrivals=wl.Burst(1_000, 200, 0.5))
    wl.hot_spot(s, 30, 5_000, 6_000, hot=2)
    wl.mix(s, 40, 6_000, 9_000, popularity=wl.Zipf(0.8), arrivals=wl.Poisson(rate=20))
    return s.txs


def kind(tx: TxDecl) -> str:
    if "v" not in tx.accounts:
        return "open"
    return "mixed" if "src" in tx.accounts else "enclave"


# -- determinism -------------------------------------------------------------------


def test_same_seed_gives_the_same_transactions() -> None:
    assert everything(7) == everything(7)
    assert len(everything(7)) > 80


def test_another_seed_gives_other_transactions() -> None:
    assert everything(7) != everything(8)


def test_generators_do_not_touch_global_randomness() -> None:
    import random

    random.seed(1)
    first = everything(3)
    random.seed(2)
    assert everything(3) == first


# -- popularity ----------------------------------------------------------------------


def test_zipf_ranking_is_a_seeded_permutation() -> None:
    rankings = [wl.Zipf(1.0).over(populated(seed).rng, PEOPLE).ranking() for seed in range(6)]
    for ranking in rankings:
        assert sorted(ranking) == sorted(PEOPLE)
    assert len({r[0] for r in rankings}) > 1, "the hottest account should differ between seeds"
    assert wl.Zipf(1.0).over(populated(3).rng, PEOPLE).ranking() == rankings[3]


def test_zipf_top_account_gets_far_more_than_a_uniform_share() -> None:
    s = populated(11)
    chooser = wl.Zipf(1.0).over(s.rng, PEOPLE)
    draws = Counter(chooser.pick(s.rng) for _ in range(20_000))
    ranking = chooser.ranking()
    uniform_share = 20_000 / len(PEOPLE)  # 1000
    # 1/H(20) = 0.278 of the draws in theory: about 5,560
    assert draws[ranking[0]] > 4 * uniform_share
    assert draws[ranking[0]] > draws[ranking[1]] > draws[ranking[-1]]


def test_zipf_skews_who_sends_transfers() -> None:
    s = populated(5)
    txs = wl.transfers(s, 2_000, 0, 10_000, popularity=wl.Zipf(1.2))
    senders = Counter(tx.sender for tx in txs)
    assert senders.most_common(1)[0][1] > 3 * len(txs) / len(PEOPLE)


def test_uniform_is_roughly_flat() -> None:
    s = populated(5)
    chooser = wl.Uniform().over(s.rng, PEOPLE)
    draws = Counter(chooser.pick(s.rng) for _ in range(20_000))
    assert set(draws) == set(PEOPLE)
    assert max(draws.values()) < 1.2 * 1_000 and min(draws.values()) > 0.8 * 1_000


def test_pairs_are_distinct_even_under_a_steep_zipf() -> None:
    s = populated(2)
    txs = wl.transfers(s, 500, 0, 1_000, popularity=wl.Zipf(60))
    assert all(tx.accounts["src"] != tx.accounts["dst"] and tx.sender == tx.accounts["src"] for tx in txs)


def test_the_receiver_is_drawn_from_the_weights_without_the_sender() -> None:
    s = populated(3)
    chooser = wl.Chooser(("a", "b", "c"), (1, 1, 2))
    pairs = Counter(chooser.pair(s.rng) for _ in range(30_000))
    from_a = pairs["a", "b"] + pairs["a", "c"]
    assert abs(from_a / 30_000 - 0.25) < 0.02
    assert abs(pairs["a", "c"] / from_a - 2 / 3) < 0.03
    assert abs(pairs["c", "a"] / (pairs["c", "a"] + pairs["c", "b"]) - 1 / 2) < 0.03


def test_hot_spot_concentrates_traffic_on_the_hot_accounts() -> None:
    s = populated(4)
    hot = ["user03", "user17"]
    txs = wl.hot_spot(s, 1_000, 2_000, 3_000, hot=hot, share=0.9)
    touching = sum(1 for tx in txs if set(tx.accounts.values()) & set(hot))
    assert touching > 0.9 * len(txs)
    assert all(2_000 <= tx.at < 3_000 for tx in txs)


def test_a_hot_set_with_all_the_weight_on_one_account_cannot_make_pairs() -> None:
    s = populated(4)
    with pytest.raises(InputError, match="no distinct pair"):
        wl.hot_spot(s, 10, 0, 1_000, hot=["user01"], share=1.0)


# -- arrival times ------------------------------------------------------------------


def test_burst_puts_its_share_in_the_window() -> None:
    s = populated(1)
    times = wl.Burst(at=4_000, width=500, share=0.6).times(s.rng, 1_000, 0, 10_000)
    inside = sum(1 for t in times if 4_000 <= t < 4_500)
    assert times == sorted(times) and len(times) == 1_000
    assert 600 <= inside < 650  # 600 in the burst plus the steady ones that fall in it


def test_burst_outside_the_window_is_refused() -> None:
    s = populated(1)
    with pytest.raises(InputError, match="Burst window"):
        wl.transfers(s, 10, 0, 1_000, arrivals=wl.Burst(at=900, width=500))


def test_poisson_arrivals_follow_the_rate() -> None:
    s = populated(1)
    times = wl.Poisson(rate=100).times(s.rng, 10**6, 1_000, 11_000)
    assert times == sorted(times) and all(1_000 <= t < 11_000 for t in times)
    assert 850 < len(times) < 1_150  # 100 per second for 10 seconds
    assert len(wl.Poisson(rate=100).times(s.rng, 50, 0, 10_000)) == 50


# -- mix -----------------------------------------------------------------------------


def test_mix_shares_are_kept() -> None:
    s = populated(9)
    txs = wl.mix(s, 1_000, 0, 10_000, open=0.5, enclave=0.35, mixed=0.15, popularity=wl.Zipf(1.0))
    kinds = Counter(kind(tx) for tx in txs)
    assert len(txs) == 1_000
    for name, share in (("open", 0.5), ("enclave", 0.35), ("mixed", 0.15)):
        assert abs(kinds[name] / 1_000 - share) <= 0.01


def test_mix_scripts_can_be_callables() -> None:
    s = populated(9)

    def record(account: str, amount: int) -> str:
        return f"v.record({amount if account == 'vault_a' else 0})"

    txs = wl.mix(s, 100, 0, 1_000, open=0, enclave=1, mixed=0, enclave_script=record)
    assert all(kind(tx) == "enclave" for tx in txs)
    assert all((tx.script == "v.record(0)") == (tx.accounts["v"] == "vault_b") for tx in txs)


@pytest.mark.parametrize("shares", [(0.5, 0.3, 0.1), (0.7, 0.4, -0.1), (1.0, 0.0, 1e-8)])
def test_mix_shares_must_add_up_to_one(shares: tuple[float, float, float]) -> None:
    with pytest.raises(InputError, match="add up to 1"):
        wl.mix(populated(1), 10, 0, 1_000, *shares)


def test_mix_needs_an_enclave_account_for_enclave_shares() -> None:
    s = Scenario(1)
    s.public_shards(1)
    s.account("a", balance=10)
    s.account("b", balance=10)
    with pytest.raises(InputError, match="no enclave account"):
        wl.mix(s, 10, 0, 1_000)
    assert len(wl.mix(s, 10, 0, 1_000, open=1, enclave=0, mixed=0)) == 10


def test_bad_template_field_is_named() -> None:
    with pytest.raises(InputError, match="vault"):
        wl.mix(populated(1), 10, 0, 1_000, enclave_script="{vault}.record(1)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accounts": ["user01", "nobody"]}, "'nobody' is not declared"),
        ({"accounts": ["user01", "vault_a"]}, "is in enclave 'acme'"),
        ({"accounts": ["user01"]}, "at least two"),
        ({"amount": (0, 5)}, "amount"),
        ({"count": -1}, "count=-1"),
        ({"start": 500, "end": 500}, "start=500, end=500"),
    ],
)
def test_transfers_input_errors(kwargs: dict, message: str) -> None:
    args = {"count": 5, "start": 0, "end": 1_000} | kwargs
    with pytest.raises(InputError, match=message):
        wl.transfers(populated(1), **args)


# -- traces -----------------------------------------------------------------------------


def test_trace_round_trip(tmp_path: Path) -> None:
    s = populated(6)
    wl.mix(s, 60, 0, 5_000, mixed_script=lambda account, amount: f"v.payout(src, dst, {amount})\nv.record(1)")
    s.transaction(6_000, "user01", "v.record(2)", {"v": "vault_a"}, payer="user02", gas_limit=9_000)
    path = tmp_path / "trace.csv"
    traces.write_trace(path, s.txs)
    again = populated(99)
    added = traces.replay_trace(again, path)
    assert again.txs == s.txs == added


def test_trace_optional_columns_and_cells(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "at_ms,sender,script,accounts\n"
        '100,user01,"src.pay(dst, 5)",src=user01;dst=user02\n'
        "\n"
        "200,user03,return 1,\n"
    )
    s = populated(1)
    traces.replay_trace(s, path)
    assert s.txs == [
        TxDecl(100, "user01", "src.pay(dst, 5)", {"src": "user01", "dst": "user02"}, "user01", 20_000),
        TxDecl(200, "user03", "return 1", {}, "user03", 20_000),
    ]


TRACE_HEADER = "at_ms,sender,script,accounts,payer,gas_limit\n"
GOOD_ROW = '100,user01,"src.pay(dst, 1)",src=user01;dst=user02,,\n'


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("1.5,user01,return 1,,,\n", r":3: at_ms '1\.5' is not an integer"),
        ("-4,user01,return 1,,,\n", r":3: at_ms -4 must be >= 0"),
        ("10,mallory,return 1,,,\n", r":3: sender 'mallory' is not an account"),
        ("10,user01,return 1,a=user02;b=ghost,,\n", r":3: account 'ghost' is not an account"),
        ("10,user01,return 1,,ghost,\n", r":3: payer 'ghost'"),
        ("10,user01,return 1,a=user02;a=user03,,\n", r":3: accounts entry 'a=user03'"),
        ("10,user01,return 1,user02,,\n", r":3: accounts entry 'user02'"),
        ("10,user01,return 1,,,lots\n", r":3: gas_limit 'lots' is not an integer"),
        ("10,user01,return 1\n", r":3: 3 cells for 6 columns"),
        # the quoted script spans lines 3-4, so the bad row after it starts on line 5
        ('10,user01,"x = 1\nreturn x",,,\n\nsoon,user01,return 1,,,\n', r":6: at_ms 'soon'"),
    ],
)
def test_trace_errors_name_the_line(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(TRACE_HEADER + GOOD_ROW + rows)
    with pytest.raises(InputError, match=message):
        traces.replay_trace(populated(1), path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("at_ms,sender,script,acounts\n", r":1: .*unknown: \['acounts'\]"),
        ("at_ms,script\n", r":1: .*missing: \['sender'\]"),
        ("", r":1: header ''"),
    ],
)
def test_trace_header_errors(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(header)
    with pytest.raises(InputError, match=message):
        traces.replay_trace(populated(1), path)


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read trace"):
        traces.replay_trace(populated(1), tmp_path / "absent.csv")


# -- end to end ---------------------------------------------------------------------------


def test_zipf_workload_commits_end_to_end() -> None:
    s = Scenario(1, name="zipf")
    s.configure(duration=20_000, block_interval=500, latency=40, jitter=10)
    s.public_shards(2, nodes=4)
    for i in range(12):
        s.account(f"acct{i}", balance=1_000_000)
    txs = wl.transfers(s, 60, 200, 5_000, popularity=wl.Zipf(1.2))
    result = Simulation(build_world(s), default_tools(), None).run()
    assert result.metrics.submitted == len(txs) == 60
    assert result.metrics.committed["open"] >= 0.9 * len(txs)
