"""Placement: SagaScale's look-ahead negotiation against fixed hash homes and learned affinity.

Question: on a skewed (Zipf) workload where a few accounts are very busy and
accounts trade mostly within small circles, which account placement
strategy moves fewer accounts between shards and commits transactions sooner:
``LookAhead`` (SagaScale: leaders ask for what the first queued transactions
need, the oldest transaction wins, accounts stay where last used),
``HashHome`` (a fixed home by hash, only the head of the queue asks, a
borrowed account goes straight back home) or ``Affinity`` (homes learned from
communities of the co-access graph)? See ``shards/placement.py``.

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``strategy`` (``lookahead``): ``lookahead``, ``hash`` or ``affinity``.
- ``depth`` (32): how many queued transactions look-ahead and affinity leaders
  read (ignored by ``hash``, which reads only the head).
- ``skew`` (1.1): the Zipf exponent of who trades within a circle and which
  circle trades (0 is uniform; around 1 the classic law).
- ``shards`` (4): public shards; ``accounts`` (48) funded public accounts in
  circles of ``circle`` (6); ``outside`` (0.1) is the share of transfers
  between two random accounts of different circles.
- ``transactions`` (400) transfers over ``load_ms`` (20000) virtual ms;
  ``duration`` (60000) leaves time for a backlog to clear.

How to read the result: the summary table's ``placement`` row names the
strategy; compare ``account transfers (release / acquire)``, ``transfer mean
ms: release + gossip + acquire`` and ``commit latency p50 / p99`` across
strategies. In ``results.json``: ``metrics.transfers.acquires`` (accounts
moved), ``metrics.transfer_ms.total`` (how long each move took, split into
``release``, ``gossip`` and ``acquire``), ``metrics.latency_ms`` and
``metrics.queue_wait_ms``. ``OUT/plots/transfers.png`` shows the moves over
time (affinity's should fall once it has learned the circles),
``latency.png`` the latency, and ``affinity.png`` the co-access graph the
circles make. Every strategy must give a well-formed chain
(``sagachain audit OUT/chain.sgc``): placement is policy, not a rule.

To compare them fairly, run all three on the same seeds with a sweep
(docs/SWEEPS.md)::

    sagachain sweep scenarios/placement.py --grid strategy=lookahead,hash,affinity --seeds 3 --out out/placement

and read ``out/placement/plots/account_transfers.png``,
``latency_p50.png`` / ``latency_p99.png`` and ``throughput.png`` (one point
per strategy, the bar spanning the seeds), or the console table. For the
transfer-time split, open each run's ``runs/strategy=S/seed-N/results.json``
at ``metrics.transfer_ms``. Read ``committed`` first: under this load a
strategy can fall behind and leave transactions queued at the end, and its
latency figures then cover only what did commit. With seed 1 at the
defaults: lookahead commits 380 of 400 (270 accounts moved, a move taking
2.3 s on average, most of it waiting for the owner to release: busy accounts
are contended), hash homes 352 (221 moves of under 1 s each, but borrowed
accounts go home and are fetched again, so transactions wait behind each
other: p50 7.4 s) and affinity all 400 (190 moves, p50 1.4 s) once it has
learned the circles. Add ``--grid skew=0,1.1`` to see how much of the
difference the skew makes, and ``--grid outside=0,0.3`` how much the
circles do.
"""

from sagachain.errors import InputError
from sagachain.sim import Scenario
from sagachain.world import workloads as wl
from shards.placement import Affinity, HashHome, LookAhead


def build(s: Scenario) -> None:
    strategy = s.param("strategy", "lookahead")
    depth = s.param("depth", 32)
    skew = s.param("skew", 1.1)
    load_ms = s.param("load_ms", 20_000)
    s.configure(duration=s.param("duration", 60_000), block_interval=500, latency=40, jitter=10)
    s.public_shards(s.param("shards", 4))
    if strategy == "lookahead":
        s.placement(LookAhead(depth=depth))
    elif strategy == "hash":
        s.placement(HashHome())
    elif strategy == "affinity":
        s.placement(Affinity(depth=depth, window=300, every=8))
    else:
        raise InputError(f"strategy={strategy!r}: choose lookahead, hash or affinity")

    people = [f"user{i}" for i in range(s.param("accounts", 48))]
    for name in people:
        s.account(name, balance=1_000_000)
    size = max(2, s.param("circle", 6))
    circles = [people[i : i + size] for i in range(0, len(people), size)]
    circles = [c for c in circles if len(c) >= 2]

    count = s.param("transactions", 400)
    outside = s.param("outside", 0.1)
    across = round(count * outside)
    # Within circles: which circle trades follows a Zipf law, and so does who trades within it.
    weights = wl.Zipf(skew).weights(s.rng, [str(i) for i in range(len(circles))])
    pick = wl.Chooser(tuple(str(i) for i in range(len(circles))), tuple(weights))
    choosers = [wl.Zipf(skew).over(s.rng, c) for c in circles]
    for at in wl.Steady().times(s.rng, count - across, 200, load_ms):
        src, dst = choosers[int(pick.pick(s.rng))].pair(s.rng)
        s.transaction(at, src, f"src.pay(dst, {s.rng.randint(1, 20)})", {"src": src, "dst": dst})
    if across:
        wl.transfers(s, across, 200, load_ms, popularity=wl.Zipf(skew))
