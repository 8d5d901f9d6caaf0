"""Scaling: public shards added as the load rises and drained as it falls (SH-2).

Question: when the open load climbs past what the live public shards can
carry, does the scaler bring shards of the pool into play soon enough to keep
the queue wait bounded, and does it give them back once the load falls, while
the chain stays well-formed?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``pool`` (6): public shards declared; ``active`` (1) of them live at the
  start, the rest are the pool ``s.scaling`` may add. The enclave's one shard
  never scales (SH-3).
- ``block_txs`` (6): most transactions one block carries. With
  ``block_interval`` (500 ms) it sets a shard's capacity: 6 per 500 ms is
  12 tx per virtual second, small enough for the peak to overflow one shard.
- ``peak`` (20.0): the load at its height, transactions per virtual second. The
  load ramps up linearly from 2 tx/s over the first ``ramp`` share of the load
  window, holds at ``peak``, then ramps down symmetrically.
- ``ramp`` (0.3): the share of the load window spent rising (and falling).
- ``load_ms`` (40000): the length of the load window; ``duration`` (70000) the
  virtual run time, so the last ``duration - load_ms`` are quiet and the pool
  drains.
- ``target_ms`` (1500) / ``low_ms`` (400): the scaler adds a shard when the
  mean queue wait stays above ``target_ms`` for ``window`` (3) samples, and
  removes one when it stays below ``low_ms``; ``cooldown_ms`` (4000) between
  two changes.
- ``accounts`` (60): funded public accounts.
- ``group`` (2): accounts trade only within fixed groups of this size (2:
  fixed pairs), so the load splits across shards without every transaction
  pulling accounts from another shard; ``0`` lets anyone pay anyone, which
  makes nearly every transaction an L2L transfer and caps what extra shards
  can add (compare ``metrics.transfers`` and the latency).

How to read the result: in the summary table, ``shards (public / enclave)``
is the pool, ``committed open`` should equal ``transactions submitted`` (the
load all commits before the end) and ``queue wait p50 / p99`` shows how far
the wait ran ahead of the target. ``OUT/plots/shards.png`` shows the live
public shards over time: a staircase up while the load rises, then down once
it is quiet; read it beside ``queue.png`` (the queue age crossing the target
before each step up) and ``throughput.png`` (the committed rate tracking the
offered load once enough shards are live). ``results.json``
``metrics.shard_changes`` lists every change as ``{"t_ms", "change":
"add"|"remove", "shard"}``: with seed 1 at the defaults, five adds every 4 s
(the cooldown) from about 18 s, while the load is at its peak, and five
removes from about 43 s as it falls, back to ``active``; never below it. ``timeseries.csv`` column
``public_shards`` is the same staircase, ``enclave_shards`` stays 1.
``sagachain audit OUT/chain.sgc`` judges the chain well-formed: adding and
draining shards moves accounts by ordinary L2L transfers
(``metrics.transfers``).

Try ``--set peak=12`` (about one shard's capacity: few or no adds) against
``--set peak=30``, or sweep ``--grid target_ms=800,1500,3000``.
"""

from sagachain.sim import Scenario


def build(s: Scenario) -> None:
    duration = s.param("duration", 70_000)
    load_ms = s.param("load_ms", 40_000)
    peak = s.param("peak", 20.0)
    ramp = s.param("ramp", 0.3)
    s.configure(duration=duration, block_interval=500, latency=30, jitter=10, block_txs=s.param("block_txs", 6))
    s.public_shards(s.param("pool", 6), active=s.param("active", 1))
    s.enclave("acme", shards=1)
    s.scaling(
        target_ms=s.param("target_ms", 1_500),
        low_ms=s.param("low_ms", 400),
        window=s.param("window", 3),
        cooldown_ms=s.param("cooldown_ms", 4_000),
    )
    people = [f"u{i}" for i in range(s.param("accounts", 60))]
    for name in people:
        s.account(name, balance=1_000_000)
    size = s.param("group", 2)
    groups = [people[i : i + size] for i in range(0, len(people), size)] if size >= 2 else [people]
    groups = [g for g in groups if len(g) >= 2]

    # A load that rises, holds and falls: per 500 ms slice, rate(t) * 0.5 arrivals
    # (fractional parts carried over so the total follows the curve exactly).
    base = 2.0
    rise = max(1, int(load_ms * ramp))
    carry = 0.0
    for start in range(0, load_ms, 500):
        mid = start + 250
        if mid < rise:
            rate = base + (peak - base) * mid / rise
        elif mid > load_ms - rise:
            rate = base + (peak - base) * (load_ms - mid) / rise
        else:
            rate = peak
        carry += rate * 0.5
        count, carry = int(carry), carry - int(carry)
        for _ in range(count):
            src, dst = s.rng.sample(s.rng.choice(groups), 2)
            s.transaction(start + s.rng.randrange(500), src, f"a.pay(b, {s.rng.randint(1, 20)})", {"a": src, "b": dst})
