"""From declarations to a genesis, keys and off-chain stores: the world both drivers start from.

The simulator runs the world of a scenario; ``node.devnet`` writes the world of
its declarations out as one data directory per node. Both must get the same
genesis for the same declarations, so this builder lives below both of them
and knows only ``Declarations``, never a driver's settings.

Every key is derived from the chain id, which includes the seed, so the same
scenario and seed give the same genesis byte for byte. Public accounts are
spread over the public shards in declaration order, enclave accounts over
their enclave's shards; a scenario may pin any account to a shard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from runtimes import builtin_account_class, compile_class, enclave_account_class, private_runtime, public_runtime
from sagachain.core.encoding import encode, hash_value
from sagachain.core.epoch_keys import KeySchedule
from sagachain.core.genesis import Genesis, PublicObject
from sagachain.core.keys import KeyPair, ModelledKey
from sagachain.core.ledger import ChainState
from sagachain.core.objects import (
    ACCOUNT_CLASS_ID,
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
from sagachain.core.mailbox import (
    ENCLAVE_ENTRY_CLASS_ID,
    IDENTITY_RECORD_CLASS_ID,
    MAILBOX_CLASS_ID,
    REGISTRY_CLASS_ID,
    REGISTRY_ID,
    Device,
    RegistryEnclave,
    IdentityRecord,
    MailboxHead,
    enclave_record_id,
    identity_record_id,
    mailbox_id,
    to_object,
)
from sagachain.core.system import system_classes
from sagachain.core.roster import KIND_TEMPLATES, ROSTER_CLASS_ID, FoundingNode, founding_roster, key_proof_message, roster_id
from sagachain.errors import InputError
from sagachain.world.declarations import MODELLED, Declarations, member_names
from shards.enclave_store import EnclaveStore

FOUNDATION = "foundation"

D = TypeVar("D", bound=Declarations)


@dataclass
class World(Generic[D]):
    """The genesis of ``scenario`` with every key and enclave store behind it; ``World[Scenario]``
    for a simulated run, so its driver reads its own settings from ``world.scenario``."""

    scenario: D
    genesis: Genesis
    account_ids: dict[str, bytes]
    account_keys: dict[bytes, KeyPair | ModelledKey]
    node_keys: dict[bytes, KeyPair | ModelledKey]
    stores: dict[str, EnclaveStore]
    enclave_keys: dict[str, bytes]
    schedules: dict[str, KeySchedule] = field(default_factory=dict)  # each roster's public key schedule at genesis (MEM-3)
    epoch_keys: dict[str, dict[int, bytes]] = field(default_factory=dict)  # what the founding members hold
    operators: dict[str, bytes] = field(default_factory=dict)  # the account acting for an enclave's founding nodes

    def chain(self) -> ChainState:
        return ChainState(self.genesis)

    def account(self, name: str) -> bytes:
        try:
            return self.account_ids[name]
        except KeyError:
            raise InputError(f"unknown account {name!r} in the scenario") from None


def build_world(sc: D) -> World[D]:
    chain_id = f"{sc.name}/seed-{sc.seed}"
    if not sc.public:
        raise InputError("a scenario needs at least one public shard: s.public_shards(1)")
    if sc.crypto == MODELLED and sc.needs_real_keys():
        raise InputError("roster actions and seatless members need real crypto (epoch keys are sealed to X25519 keys, "
                         "which modelled keys are not): drop s.crypto_mode('modelled')", rule="MEM-3")
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
        # An enclave shard's committee is its roster's seats, which list members by node id (MEM-1).
        shards.append(ShardRecord(id=shard_id, enclave=enclave, committee=tuple(sorted(committee) if enclave else committee)))

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
    schedules: dict[str, KeySchedule] = {}
    epoch_keys: dict[str, dict[int, bytes]] = {}
    operators: dict[str, bytes] = {}
    if sc.crypto != MODELLED:  # sealing needs real X25519 keys, which modelled node keys are not
        home = public_ids[0]
        for enclave, (ids, _) in sc.enclaves.items():
            setup = sc.enclave_setup[enclave]
            operator = account_id_for(f"{chain_id}/{enclave}.operator")
            operator_key = keys.derive(chain_id, "account", f"{enclave}.operator")
            account_keys[operator] = operator_key
            operators[enclave] = operator
            accounts.append(AccountRecord(id=operator, name=f"{enclave}.operator", class_id=ACCOUNT_CLASS_ID, enclave=None, public_key=operator_key.public, shard=home))
            objects.append(PublicObject(id=operator, value=StoredObject(class_id=ACCOUNT_CLASS_ID, owner=operator, fields={BALANCE_FIELD: setup.operator_balance})))
            founders = []
            for shard in shards:
                if shard.enclave != enclave:
                    continue
                for node in shard.committee:
                    key = node_keys[node]
                    founders.append(FoundingNode(key=key.public, account=operator, shard=shard.id, proof=key.sign(key_proof_message(enclave, node, key.public, operator))))
            for name in member_names(sc, enclave):  # seatless founding MEMBERs: keys and state, no committee
                key = keys.derive(chain_id, "node", name)
                node_keys[node_id_for(key.public)] = key
                founders.append(FoundingNode(key=key.public, account=operator, shard="", proof=key.sign(key_proof_message(enclave, node_id_for(key.public), key.public, operator))))
            members = list({node_id_for(f.key): f.key for f in founders}.items())
            entropy = random.Random(hash_value(["genesis-epoch", chain_id, enclave])).randbytes
            schedule, rekey, epoch_key = KeySchedule.start(enclave, setup.key_strategy, members, entropy)
            schedules[enclave] = schedule
            epoch_keys[enclave] = {1: epoch_key}
            rid = roster_id(enclave)
            accounts.append(AccountRecord(id=rid, name=f"{enclave}.roster", class_id=ROSTER_CLASS_ID, enclave=None, public_key=bytes(32), shard=home))
            roster = founding_roster(
                enclave=enclave,
                kind=setup.kind,
                strategy=setup.key_strategy,
                auto_join=setup.auto_join,
                shards=tuple(ids),
                founders=founders,
                rekey=encode(rekey),
            )
            objects.extend(PublicObject(id=oid, value=value) for oid, value in roster)
    if sc.enclaves or sc.identities:
        _mailboxes_and_registry(sc, public_ids[0], account_ids, operators, shards, node_keys, accounts, objects)
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
    # the key the initial state is sealed under: epoch 1's, which only the founding members open
    # (MEM-3); modelled crypto has no epochs, so a key derived from the chain stands in
    enclave_keys = {e: epoch_keys[e][1] if e in epoch_keys else hash_value(["enclave-key", chain_id, e]) for e in sc.enclaves}
    return World(sc, genesis, account_ids, account_keys, node_keys, stores, enclave_keys, schedules, epoch_keys, operators)


def _mailboxes_and_registry(
    sc: Declarations,
    home: str,
    account_ids: dict[str, bytes],
    operators: dict[str, bytes],
    shards: list[ShardRecord],
    node_keys: dict[bytes, KeyPair | ModelledKey],
    accounts: list[AccountRecord],
    objects: list[PublicObject],
) -> None:
    """The registry (REG-1), a mailbox per enclave (its founding nodes are its devices) and per
    identity (its device accounts), each registered; all public accounts on the first shard."""

    def mailbox(name: str, recipient: bytes | str, manager: bytes, retention: str, ttl: int, devices: list[Device]) -> bytes:
        mid = mailbox_id(recipient)
        accounts.append(AccountRecord(id=mid, name=name, class_id=MAILBOX_CLASS_ID, enclave=None, public_key=bytes(32), shard=home))
        key = recipient if isinstance(recipient, bytes) else mid
        head = MailboxHead(recipient=key, manager=manager, retention=retention, ttl=ttl, next_seq=1, devices=tuple(sorted(devices, key=lambda d: d.id)))
        objects.append(PublicObject(id=mid, value=to_object(MAILBOX_CLASS_ID, mid, head, 0)))
        return mid

    accounts.append(AccountRecord(id=REGISTRY_ID, name="registry", class_id=REGISTRY_CLASS_ID, enclave=None, public_key=bytes(32), shard=home))
    objects.append(PublicObject(id=REGISTRY_ID, value=StoredObject(class_id=REGISTRY_CLASS_ID, owner=REGISTRY_ID, fields={BALANCE_FIELD: 0})))
    for enclave in sc.enclaves:
        setup = sc.enclave_setup[enclave]
        operator = operators.get(enclave)
        if operator is None:
            continue  # modelled crypto: no roster, so no members to deliver to
        nodes = sorted({n for s in shards if s.enclave == enclave for n in s.committee})
        devices = [Device(id=n, key=node_keys[n].public, account=operator) for n in nodes]
        retention = KIND_TEMPLATES[setup.kind].retention
        mid = mailbox(f"{enclave}.mailbox", enclave, operator, retention, sc.param("mailbox_ttl_ms", 60_000), devices)
        record = RegistryEnclave(enclave=enclave, kind=setup.kind, roster=roster_id(enclave), mailbox=mid, registrant=operator)
        objects.append(PublicObject(id=enclave_record_id(enclave), value=to_object(ENCLAVE_ENTRY_CLASS_ID, REGISTRY_ID, record)))
    for name, decl in sc.identities.items():
        identity = account_ids[name]
        devices = [Device(id=account_ids[d], key=_account_key(accounts, account_ids[d]), account=account_ids[d]) for d in decl.devices]
        mid = mailbox(f"{name}.mailbox", identity, identity, decl.retention, decl.ttl_ms, devices)
        record = IdentityRecord(account=identity, personal="", dm="", shared=(), mailbox=mid)
        objects.append(PublicObject(id=identity_record_id(identity), value=to_object(IDENTITY_RECORD_CLASS_ID, REGISTRY_ID, record)))


def _account_key(accounts: list[AccountRecord], account: bytes) -> bytes:
    return next(a.public_key for a in accounts if a.id == account)


def _shard_plan(sc: Declarations) -> list[tuple[str, int, str | None]]:
    plan: list[tuple[str, int, str | None]] = [(sid, n, None) for sid, n in sc.public]
    for enclave, (ids, n) in sc.enclaves.items():
        plan.extend((sid, n, enclave) for sid in ids)
    return plan


def _classes(sc: Declarations, account_ids: dict[str, bytes], private_rt: dict[str | None, RuntimeRecord]) -> list[ClassRecord]:
    classes = [builtin_account_class(), *system_classes()]
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

