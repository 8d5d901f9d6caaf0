"""CLS-3: may an open class inherit from an enclave's private class?

Question: an open (public) class whose base is a private class of enclave
``acme`` would let public code reach into what the enclave keeps off chain.
Under the chain's CLS-3 policy ``strict`` such a deploy is refused; under
``permissive`` it is accepted but bound to the enclave (the class record
carries ``enclave = acme``, so it only ever runs on ``acme``'s shards). Do
honest shards apply the policy, and does the auditor catch a colluding
shard that ignores it?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``policy`` (``strict``): the genesis parameter ``cls3_policy``,
  ``strict`` or ``permissive``.
- ``collude`` (false): under ``strict``, the committee of the deploying shard
  colludes and includes the deploy anyway (misbehaviour ``strict_deploy``).
- ``shard`` (empty: ``P0`` under strict, ``acme/0`` under permissive): the
  shard the deploy is sent to. Under permissive it must be one of the
  enclave's shards (elsewhere it is refused under CMI-2).
- ``deploy_at`` (1200) virtual ms; ``transfers`` (30) open transfers and
  ``enclave_txs`` (10) ``v.record(n)`` calls as background traffic;
  ``duration`` (12000) virtual ms.

How to read the result (``sagachain audit OUT/chain.sgc``, and
``results.json`` ``metrics.rejected_transactions``):

- ``policy=strict`` (default): the honest shard refuses the deploy; it never
  reaches the chain, ``metrics.rejected_transactions`` shows ``CLS-3: 1``
  and the audit is well-formed.
- ``policy=strict collude=true``: the colluding shard puts the deploy in its
  block; the audit exits 1 and names CLS-3 at that shard and height ("open
  class Leaky inherits from a class bound to enclave acme; the strict policy
  forbids it") and, since the deploy went to a public shard, CMI-2 as well
  (a class bound to ``acme`` deployed outside it);
  ``metrics.rejected_transactions`` is empty.
- ``policy=permissive``: the deploy is accepted on ``acme/0``, the chain's
  deploy entry (``acme/0`` height 1 with seed 1) carries the class bound to
  ``acme`` (``DeployEntry.cls.enclave == "acme"``), nothing is rejected and
  the audit is well-formed (the CLS-3 row of the audit table counts the
  deploy it checked).

Run all three with ``sagachain sweep scenarios/cls3_policy.py --grid
policy=strict,permissive --grid collude=false,true --seeds 1`` (``collude``
is ignored under permissive) and compare the ``rejected`` column.
"""

from sagachain.errors import InputError
from sagachain.sim import Scenario
from sagachain.world import recipes

LEAKY = '''
class Leaky(Treasury):
    ALLOW = {"peek": "any"}
    def peek(self):
        return self.total
'''

def build(s: Scenario) -> None:
    policy = s.param("policy", "strict")
    collude = s.param("collude", False)
    if policy not in ("strict", "permissive"):
        raise InputError(f"policy={policy!r}: choose strict or permissive")
    duration = s.param("duration", 12_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10, cls3_policy=policy)
    s.public_shards(2)
    s.enclave("acme", shards=2)
    people = recipes.people(s, 8)
    vaults = recipes.enclave_vaults(s, "acme", ["acme/0", "acme/1"])

    end = duration * 2 // 3
    recipes.traffic(s, people, vaults, s.param("transfers", 30), s.param("enclave_txs", 10), end)

    shard = s.param("shard", "") or ("P0" if policy == "strict" else "acme/0")
    deployer = "acme_admin" if shard.startswith("acme") else "user0"
    s.deploy(s.param("deploy_at", 1_200), "Leaky", LEAKY, base="Treasury", deployer=deployer, shard=shard)
    if collude and policy == "strict":
        s.misbehave(shard, "strict_deploy")
