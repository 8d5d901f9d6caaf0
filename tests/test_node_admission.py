"""What a node refuses at submission, with the rule, and how it backs off a repeat offender."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chainkit import Run, simulate, small
from shards.admission import admission_problem
from node.connections import FIRST_BACKOFF, MAX_BACKOFF, STRIKE_WINDOW, STRIKES, Backoff
from sagachain.core.ledger import ChainState
from sagachain.core.tx import Transaction, make_transaction
from sagachain.sim.scenario import Scenario
from shards.tools import default_tools


@pytest.fixture(scope="module")
def run() -> Run:
    def build(s: Scenario) -> None:
        small(s, beta=True, transfers=0)
        s.configure(duration=3_000)
        s.transaction(300, "alice", "a.pay(b, 1)", {"a": "alice", "b": "bob"})

    return simulate(build)


def _tx(run: Run, sender: str = "alice", nonce: int = 1, script: str = "a.pay(b, 1)", gas_limit: int = 10_000, **accounts: str) -> Transaction:
    world = run.world
    uses = accounts or {"a": sender, "b": "bob"}
    return make_transaction(key=world.account_keys[world.account(sender)], sender=world.account(sender), nonce=nonce,
                            gas_limit=gas_limit, gas_payer=world.account(sender),
                            accounts={alias: world.account(name) for alias, name in uses.items()}, script=script)


def test_a_well_formed_transaction_is_admitted(run: Run) -> None:
    assert admission_problem(ChainState(run.genesis), default_tools(), _tx(run)) is None


@pytest.mark.parametrize(
    ("change", "rule", "words"),
    [
        (lambda tx, run: replace(tx, signature=bytes(64)), "TX-1", "signature does not verify"),
        (lambda tx, run: replace(tx, sender=b"\x09" * 32), "TX-1", "not an account of this chain"),
        (lambda tx, run: _tx(run, gas_limit=0), "TX-1", "gas limit 0"),
        (lambda tx, run: _tx(run, script="while True:\n    pass"), "TX-1", "line 1"),
        (lambda tx, run: _tx(run, script="v.record(1)\nw.record(2)", v="vault", w="beta_box"), "CMI-4", ""),
    ],
)
def test_a_bad_transaction_is_refused_with_its_rule(run: Run, change, rule: str, words: str) -> None:  # type: ignore[no-untyped-def]
    problem = admission_problem(ChainState(run.genesis), default_tools(), change(_tx(run), run))
    assert problem is not None and problem[0] == rule and words in problem[1]


def test_a_replayed_or_stale_transaction_is_refused_once_the_chain_has_its_nonce(run: Run) -> None:
    chain = run.result.chain  # the simulated chain, where alice's nonce 1 is final
    committed = next(e.tx for b in run.result.blocks for e in b.tx_entries() if e.tx.sender == run.world.account("alice"))
    replayed = admission_problem(chain, default_tools(), committed)
    assert replayed is not None and replayed[0] == "TX-1" and "replayed" in replayed[1]
    stale = admission_problem(chain, default_tools(), _tx(run, nonce=1, script="a.pay(b, 2)"))
    assert stale is not None and "use 2" in stale[1]
    assert admission_problem(chain, default_tools(), _tx(run, nonce=2)) is None


def test_strikes_within_the_window_back_a_key_off_doubling_up_to_the_cap() -> None:
    backoff, key = Backoff(), b"k" * 32
    now = 1_000.0
    for _ in range(STRIKES - 1):
        assert backoff.strike(key, now) is None
    assert backoff.refused(key, now) is None
    assert backoff.strike(key, now) == FIRST_BACKOFF
    assert "backed off" in (backoff.refused(key, now + 1) or "")
    assert backoff.refused(key, now + FIRST_BACKOFF) is None
    lengths = []
    for round_ in range(12):
        t = now + 1_000 * (round_ + 1)
        lengths.extend(x for x in (backoff.strike(key, t) for _ in range(STRIKES)) if x is not None)
    assert lengths[0] == 2 * FIRST_BACKOFF and lengths[-1] == MAX_BACKOFF
    spread = Backoff()
    for i in range(STRIKES * 3):  # strikes further apart than the window never add up
        assert spread.strike(key, i * (STRIKE_WINDOW + 1)) is None
    assert backoff.refused(b"other" * 7, now) is None
