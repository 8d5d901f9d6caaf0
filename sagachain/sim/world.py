"""From a scenario's declarations to a genesis, keys and off-chain stores.

Every key is derived from the chain id, which includes the seed, so the same
scenario and seed give the same genesis byte for byte. Public accounts are
spread over the public shards in declaration order, enclave accounts over
their enclave's shards; a scenario may pin any account to a shard.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from runtimes import builtin_account_class, compile_class, enclave_account_class, private_runtime, public_runtime
from sagachain.core.encoding import hash_value
from sagachain.core.genesis import Genesis, PublicObject
from sagachain.core.keys import KeyPair, ModelledKey
from sagachain.core.ledger import ChainState
from sagachain.core.objects import (
    BALANCE_FIELD,
    AccountRecord,
    ClassRecord,
    EnclaveRecord,
    NodeRecord,
    RuntimeRecord,
    ShardRecord,
    StoredObject,
    account_id_for,
    node_id_for,
)
from sagachain.errors import InputError
from sagachain.sim.scenario import MODELLED, Scenario
from shards.enclave_store import EnclaveStore

FOUNDATION = "foundation"


@dataclass
class World:
    scenario: Scenario
    genesis: Genesis
    account_ids: dict[str, bytes]
    account_keys: dict[bytes, KeyPair | ModelledKey]
    node_keys: dict[bytes, KeyPair | ModelledKey]
    stores: dict[str, EnclaveStore]
    enclave_keys: dict[str, bytes]

    def chain(self) -> ChainState:
        return ChainState(self.genesis)

    def account(self, name: str) -> bytes:
        try:
            return self.account_ids[name]
        except KeyError:
            raise InputError(f"unknown account {name!r} in the scenario") from None


def build_world(sc: Scenario) -> World:
    chain_id = f"{sc.name}/seed-{sc.seed}"
    if not sc.public:
        raise InputError("a scenario needs at least one public shard: s.public_shards(1)")
    runtimes: list[RuntimeRecord] = [public_runtime()] + [private_runtime(e) for e in sc.enclaves]
    private_rt = {r.enclave: r for r in runtimes if r.private}
    account_ids = {name: account_id_for(f"{chain_id}/{name}") for name in [FOUNDATION, *sc.accounts]}
    classes = _classes(sc, account_ids, private_rt)
    by_name = {c.name: c for c in classes}

    keys = ModelledKey if sc.crypto == MODELLED else KeyPair
    node_keys: dict[bytes, KeyPair | ModelledKey] = {}
    nodes: list[NodeRecord] = []
    shards: list[ShardRecord] = []
    public_rt = runtimes[0].id
    for shard_id, count, enclave in _shard_plan(sc):
        committee = []
        for i in range(count):
            name = f"{shard_id}-n{i}"
            key = keys.derive(chain_id, "node", name)
            node_id = node_id_for(key.public)
            node_keys[node_id] = key
            declared = (public_rt, private_rt[enclave].id) if enclave else (public_rt,)
            nodes.append(NodeRecord(id=node_id, name=name, public_key=key.public, operator=f"operator-{shard_id}", runtimes=declared))
            committee.append(node_id)
        shards.append(ShardRecord(id=shard_id, enclave=enclave, committee=tuple(committee)))

    public_ids = sc.initially_live()  # accounts start on the shards live at the start (SH-2)
    account_keys: dict[bytes, KeyPair | ModelledKey] = {}
    accounts: list[AccountRecord] = []
    objects: list[PublicObject] = []
    stores = {e: EnclaveStore(e) for e in sc.enclaves}
    placed = {e: 0 for e in sc.enclaves}
    decls = [(FOUNDATION, None, "ClassAccount", 0, None, {})] + [
        (a.name, a.enclave, a.cls, a.balance, a.shard, a.fields) for a in sc.accounts.values()
    ]
    for index, (name, enclave, cls_name, balance, shard, fields) in enumerate(decls):
        aid = account_ids[name]
        key = keys.derive(chain_id, "account", name)
        account_keys[aid] = key
        cls = by_name.get(cls_name or f"EnclaveAccount_{enclave}")
        if cls is None:
            raise InputError(f"account {name!r} names unknown class {cls_name!r}")
        if shard is None:
            if enclave is None:
                shard = public_ids[index % len(public_ids)]
            else:
                ids = sc.enclaves[enclave][0]
                shard = ids[placed[enclave] % len(ids)]
                placed[enclave] += 1
        accounts.append(AccountRecord(id=aid, name=name, class_id=cls.id, enclave=enclave, public_key=key.public, shard=shard))
        obj = StoredObject(class_id=cls.id, owner=aid, fields=dict(fields))
        if enclave is None:
            objects.append(PublicObject(id=aid, value=obj.with_fields(**{BALANCE_FIELD: balance})))
        else:
            stores[enclave].objects[aid] = obj
    for decl in sc.classes:
        if decl.private:
            assert decl.enclave is not None
            stores[decl.enclave].private_code[by_name[decl.name].id] = decl.code

    enclaves = [
        EnclaveRecord(
            id=e,
            shards=tuple(ids),
            runtime=private_rt[e].id,
            account_class=by_name[f"EnclaveAccount_{e}"].id,
            state_commitment=stores[e].commitment(),
        )
        for e, (ids, _) in sc.enclaves.items()
    ]
    params = replace(sc.params, foundation=account_ids[FOUNDATION])
    genesis = Genesis(
        chain_id=chain_id,
        params=params,
        runtimes=tuple(runtimes),
        classes=tuple(classes),
        nodes=tuple(nodes),
        shards=tuple(shards),
        enclaves=tuple(enclaves),
        accounts=tuple(accounts),
        objects=tuple(objects),
    )
    enclave_keys = {e: hash_value(["enclave-key", chain_id, e]) for e in sc.enclaves}
    return World(sc, genesis, account_ids, account_keys, node_keys, stores, enclave_keys)


def _shard_plan(sc: Scenario) -> list[tuple[str, int, str | None]]:
    plan: list[tuple[str, int, str | None]] = [(sid, n, None) for sid, n in sc.public]
    for enclave, (ids, n) in sc.enclaves.items():
        plan.extend((sid, n, enclave) for sid in ids)
    return plan


def _classes(sc: Scenario, account_ids: dict[str, bytes], private_rt: dict[str | None, RuntimeRecord]) -> list[ClassRecord]:
    classes = [builtin_account_class()]
    classes += [enclave_account_class(e, private_rt[e].id) for e in sc.enclaves]
    by_name = {c.name: c for c in classes}
    for decl in sc.classes:
        base = by_name.get(decl.base) if decl.base else None
        if decl.base and base is None:
            raise InputError(f"class {decl.name!r} names unknown base {decl.base!r}; declare the base first")
        if decl.private and decl.owner not in account_ids:
            raise InputError(f"private class {decl.name!r} names unknown owner account {decl.owner!r}")
        record = compile_class(
            name=decl.name,
            code=decl.code,
            base=base.id if base else None,
            runtime=private_rt[decl.enclave].id if decl.private else public_runtime().id,
            private=decl.private,
            enclave=decl.enclave,
            owner=account_ids[decl.owner] if decl.owner else None,
        )
        classes.append(record)
        by_name[record.name] = record
    return classes

