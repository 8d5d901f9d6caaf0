"""The public ledger's undo log: validating a proposal leaves no trace (used by every block check)."""

from __future__ import annotations

from sagachain.core.genesis import Genesis, Params, PublicObject
from sagachain.core.ledger import ChainState
from sagachain.core.objects import (
    ACCOUNT_CLASS_ID,
    AccountRecord,
    ShardRecord,
    StoredObject,
    account_id_for,
)


def _genesis() -> Genesis:
    alice = account_id_for("alice")
    return Genesis(
        chain_id="t",
        params=Params(foundation=alice),
        runtimes=(),
        classes=(),
        nodes=(),
        shards=(ShardRecord(id="P0", enclave=None, committee=()),),
        enclaves=(),
        accounts=(AccountRecord(id=alice, name="alice", class_id=ACCOUNT_CLASS_ID, enclave=None, public_key=b"k" * 32, shard="P0"),),
        objects=(PublicObject(id=alice, value=StoredObject(class_id=ACCOUNT_CLASS_ID, owner=alice, fields={"balance": 100})),),
    )


def test_rollback_restores_objects_supply_and_ownership() -> None:
    state = ChainState(_genesis())
    alice = account_id_for("alice")
    before = (dict(state.objects), state.circulating, dict(state.owner), dict(state.objects_of))
    state.begin()
    state.debit_fee(alice, 30)
    state.set_object(b"x" * 32, StoredObject(class_id=ACCOUNT_CLASS_ID, owner=alice, fields={"balance": 5}))
    state._put(state.owner, alice, "P9")
    assert state.circulating == 75
    state.rollback()
    assert (state.objects, state.circulating, state.owner) == before[:3]
    assert {k: v for k, v in state.objects_of.items() if v} == {k: v for k, v in before[3].items() if v}


def test_commit_keeps_changes() -> None:
    state = ChainState(_genesis())
    alice = account_id_for("alice")
    state.begin()
    state.debit_fee(alice, 30)
    state.commit()
    assert state.balance(alice) == 70
    assert state.circulating == 70
