"""The SagaPython runtime: the subset (TX-1), gas (RT-4), the CMI (CMI-1..CMI-4), RT-1..RT-3, MINT-1."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtimes import (
    ExecutionContext,
    GasSchedule,
    builtin_account_class,
    check_script,
    compile_class,
    enclave_account_class,
    execute_transaction,
    private_runtime,
    public_runtime,
)
from sagachain.core.encoding import ObjRef
from sagachain.core.keys import KeyPair
from sagachain.core.objects import ACCOUNT_CLASS_ID, StoredObject, account_id_for, class_id_for
from sagachain.core.tx import make_transaction
from sagachain.errors import ScriptError

COUNTER = '''
class Counter(ClassAccount):
    ALLOW = {"bump": "any", "drain": "signer"}
    def bump(self, n):
        for i in range(n):
            self.count = self.count + 1
        log(self.count)
        return self.count
    def secret(self):
        return 1
    def drain(self, to, amount):
        self.pay(to, amount)
    def cheat(self):
        self.balance = 1000000000
'''

VAULT = '''
class Vault(EnclaveAccount_acme):
    ALLOW = {"add": "any", "pay_out": "any", "poke": "any"}
    def add(self, n):
        self.total = self.total + n
    def pay_out(self, src, dst, amount):
        src.pay(dst, amount)
    def poke(self, other):
        other.add(1)
'''

PUB = public_runtime()
ACME_RT = private_runtime("acme")
BETA_RT = private_runtime("beta")
KEY = KeyPair(b"runtime-tests".ljust(32, b"\0"))
ALICE, BOB, VAULT_A, VAULT_B = (account_id_for(n) for n in ("alice", "bob", "vault_a", "vault_b"))


def _classes() -> dict[bytes, object]:
    base = builtin_account_class()
    acme = enclave_account_class("acme", ACME_RT.id)
    beta = enclave_account_class("beta", BETA_RT.id)
    counter = compile_class(name="Counter", code=COUNTER, base=ACCOUNT_CLASS_ID, runtime=PUB.id, private=False, enclave=None, owner=None)
    vault = compile_class(name="Vault", code=VAULT, base=acme.id, runtime=ACME_RT.id, private=True, enclave="acme", owner=None)
    return {c.id: c for c in (base, acme, beta, counter, vault)}


ENCLAVE_OF = {VAULT_A: "acme", VAULT_B: "beta"}


def _objects() -> dict[bytes, StoredObject]:
    counter, vault = class_id_for("Counter"), class_id_for("Vault")
    return {
        ALICE: StoredObject(class_id=counter, owner=ALICE, fields={"balance": 1000, "count": 0}),
        BOB: StoredObject(class_id=counter, owner=BOB, fields={"balance": 5, "count": 0}),
        VAULT_A: StoredObject(class_id=vault, owner=VAULT_A, fields={"total": 0}),
        VAULT_B: StoredObject(class_id=vault, owner=VAULT_B, fields={"total": 0}),
    }


def _ctx(shard_enclave: str | None = None, *, code: bool = True, owned: frozenset[bytes] | None = None, gas: GasSchedule | None = None) -> ExecutionContext:
    return ExecutionContext(
        shard="acme/0" if shard_enclave else "P0",
        shard_enclave=shard_enclave,
        node_enclaves=frozenset({shard_enclave}) if shard_enclave else frozenset(),
        owns=lambda a: owned is None or a in owned,
        account_enclave=ENCLAVE_OF.get,
        classes=_classes(),  # type: ignore[arg-type]
        runtimes={r.id: r for r in (PUB, ACME_RT, BETA_RT)},
        private_code={class_id_for("Vault"): VAULT} if code else {},
        gas=gas or GasSchedule(),
    )


def _run(script: str, accounts: dict[str, bytes], ctx: ExecutionContext | None = None, gas_limit: int = 100_000, sender: bytes = ALICE):
    tx = make_transaction(key=KEY, sender=sender, nonce=1, gas_limit=gas_limit, gas_payer=ALICE, accounts=accounts, script=script)
    return execute_transaction(tx, ctx or _ctx(), _objects())


# -- the subset (TX-1) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "construct"),
    [
        ("x = 1\nwhile x:\n    x = 0", 2, "While"),
        ("import os", 1, "Import"),
        ("x = 1.5", 1, "float literal"),
        ("x = 1\ny = x / 2", 2, "Div"),
        ("f = lambda: 1", 1, "Lambda"),
        ("def f():\n    return 1", 1, "FunctionDef"),
        ("a.b = 1", 1, "assignment to Attribute"),
        ("x = open('f')", 1, "call of 'open'"),
        ("x = a.__class__", 1, "name '__class__'"),
        ("x = [i for i in range(3)]", 1, "ListComp"),
        ("x = 1 is 1", 1, "Is"),
        ("x = (", 1, "syntax"),
    ],
)
def test_subset_refuses_with_line_and_construct(source: str, line: int, construct: str) -> None:
    with pytest.raises(ScriptError) as info:
        check_script(source)
    assert info.value.rule == "TX-1"
    assert info.value.line == line
    assert info.value.construct == construct
    assert f"line {line}" in str(info.value)


def test_subset_accepts_the_documented_constructs() -> None:
    check_script(
        "x = 1 + 2 * 3 // 4 % 5 - -1\n"
        "ys = [1, 2] + [3]\n"
        "d = {'a': 1}\n"
        "for y in ys:\n"
        "    if y > 1 and not y == 2:\n"
        "        x += y\n"
        "    else:\n"
        "        continue\n"
        "z = d['a'] if x else None\n"
        "require(x > 0, 'positive')\n"
        "log(x, z)\n"
    )


def test_class_compilation_derives_the_method_table() -> None:
    counter = _classes()[class_id_for("Counter")]
    table = {m.name: (m.params, m.allow) for m in counter.methods}  # type: ignore[attr-defined]
    assert table == {
        "bump": (("n",), "any"),
        "cheat": ((), "owner"),
        "drain": (("to", "amount"), "signer"),
        "secret": ((), "owner"),
    }
    vault = _classes()[class_id_for("Vault")]
    assert vault.code is None and vault.private and vault.enclave == "acme"  # type: ignore[attr-defined]


def test_class_must_name_its_registered_base() -> None:
    with pytest.raises(ScriptError, match="base"):
        compile_class(name="Counter", code=COUNTER, base=class_id_for("Other"), runtime=PUB.id, private=False, enclave=None, owner=None)


# -- execution and gas (RT-4) ----------------------------------------------------


def test_method_call_writes_logs_and_returns() -> None:
    result = _run("return a.bump(3)", {"a": ALICE})
    assert result.ok, result.error
    assert result.return_value == 3
    assert result.log == (3,)
    assert result.writes[ALICE].fields["count"] == 3


def test_gas_is_deterministic_and_grows_with_work() -> None:
    small = _run("a.bump(1)", {"a": ALICE})
    again = _run("a.bump(1)", {"a": ALICE})
    large = _run("a.bump(50)", {"a": ALICE})
    assert small.gas_used == again.gas_used
    assert large.gas_used > small.gas_used


def test_out_of_gas_fails_with_rt_4_and_charges_the_limit() -> None:
    result = _run("a.bump(500)", {"a": ALICE}, gas_limit=300)
    assert not result.ok and result.rule == "RT-4"
    assert result.gas_used == 300
    assert result.writes == {}


def test_loop_bound_is_rt_4() -> None:
    result = _run("a.bump(5000)", {"a": ALICE}, ctx=_ctx(gas=GasSchedule(max_loop=100)))
    assert result.rule == "RT-4" and "bound" in (result.error or "")


def test_integer_overflow_is_rt_4() -> None:
    result = _run("x = 2\nfor i in range(70):\n    x = x * 2", {})
    assert result.rule == "RT-4"


def test_require_fails_without_a_rule() -> None:
    result = _run("require(1 > 2, 'no')", {})
    assert not result.ok and result.rule is None and "no" in (result.error or "")


def test_script_failure_messages_are_the_interpreters_own() -> None:
    result = _run("x = 'a' + 1", {})
    assert result.error == "script line 1: Add is not defined for str and int"


@given(st.integers(min_value=-(2**40), max_value=2**40), st.integers(min_value=1, max_value=2**20))
@settings(max_examples=50, deadline=None)
def test_integer_arithmetic_matches_python(a: int, b: int) -> None:
    result = _run(f"return [{a} + {b}, {a} - {b}, {a} * {b}, {a} // {b}, {a} % {b}]", {})
    assert result.return_value == [a + b, a - b, a * b, a // b, a % b]


# -- the CMI -------------------------------------------------------------------


def test_cmi_1_owner_permission_refuses_other_senders() -> None:
    result = _run("b.secret()", {"b": BOB})
    assert result.rule == "CMI-1" and "refused" in (result.error or "")


def test_cmi_1_undeclared_account_is_refused() -> None:
    result = _run("a.drain(b, 1)", {"a": ALICE, "x": VAULT_A}, ctx=_ctx())
    assert result.rule is None or result.rule == "CMI-1"
    result = _run("x = a\nx.bump(1)", {"a": ALICE}, ctx=_ctx(owned=frozenset()))
    assert result.rule == "CMI-1" and "does not own" in (result.error or "")


def test_cmi_1_signer_permission() -> None:
    ok = _run("a.drain(b, 10)", {"a": ALICE, "b": BOB})
    assert ok.ok, ok.error
    assert ok.writes[ALICE].fields["balance"] == 990 and ok.writes[BOB].fields["balance"] == 15
    refused = _run("b.drain(a, 1)", {"a": ALICE, "b": BOB})
    assert refused.rule == "CMI-1"


def test_cmi_2_enclave_account_never_runs_on_a_public_shard() -> None:
    result = _run("v.add(1)", {"v": VAULT_A}, ctx=_ctx(None))
    assert result.rule == "CMI-2"


def test_cmi_3_enclave_and_open_accounts_message_each_other_on_the_enclave_shard() -> None:
    result = _run("v.pay_out(a, b, 7)", {"v": VAULT_A, "a": ALICE, "b": BOB}, ctx=_ctx("acme"))
    assert result.ok, result.error
    assert result.writes[BOB].fields["balance"] == 12


def test_cmi_4_cross_enclave_message_is_refused() -> None:
    result = _run("v.poke(w)", {"v": VAULT_A, "w": VAULT_B}, ctx=_ctx("acme"))
    assert result.rule == "CMI-4"


def test_rt_3_node_without_the_private_code_cannot_run_it() -> None:
    result = _run("v.add(1)", {"v": VAULT_A}, ctx=_ctx("acme", code=False))
    assert result.rule == "RT-3"


def test_rt_2_private_runtime_only_on_its_enclave_nodes() -> None:
    ctx = replace(_ctx("acme"), node_enclaves=frozenset())
    assert _run("v.add(1)", {"v": VAULT_A}, ctx=ctx).rule in ("CMI-2", "RT-2")


def test_rt_1_unregistered_runtime() -> None:
    ctx = replace(_ctx(), runtimes={})
    assert _run("a.bump(1)", {"a": ALICE}, ctx=ctx).rule == "RT-1"


def test_mint_1_enclave_account_cannot_pay_or_be_paid() -> None:
    result = _run("a.drain(v, 1)", {"a": ALICE, "v": VAULT_A}, ctx=_ctx("acme"))
    assert result.rule == "MINT-1"


def test_mint_5_scripts_cannot_set_balances() -> None:
    result = _run("a.cheat()", {"a": ALICE})
    assert result.rule in ("MINT-5", "CMI-1")
    # the owner itself may call cheat(); it is still refused
    result = _run("a.cheat()", {"a": ALICE}, sender=ALICE)
    assert not result.ok


def test_new_creates_an_object_owned_by_the_sending_account() -> None:
    note = '''
class Note(Object):
    ALLOW = {"read": "any"}
    def read(self):
        return self.text
'''
    cls = compile_class(name="Note", code=note, base=None, runtime=PUB.id, private=False, enclave=None, owner=None)
    ctx = replace(_ctx(), classes={**_classes(), cls.id: cls})
    result = _run("n = new('Note', text='hi')\nreturn [n, n.read()]", {"a": ALICE}, ctx=ctx)
    assert result.ok, result.error
    ref, text = result.return_value
    assert isinstance(ref, ObjRef) and text == "hi"
    assert result.writes[ref.id].owner == ALICE


def test_deepest_nesting_at_the_deepest_call_depth_fails_cleanly() -> None:
    """Worst case of the interpreter's own recursion: it stays a transaction failure, never a crash."""
    depth = 14
    body = "".join("    " * (i + 2) + f"if n > {-i - 1}:\n" for i in range(depth))
    inner = "    " * (depth + 2)
    expr = "-(" * 14 + "n" + ")" * 14
    code = f"class Deep(ClassAccount):\n    ALLOW = {{'f': 'any'}}\n    def f(self, n):\n{body}{inner}x = {expr}\n{inner}return self.f(n + 1)\n"
    deep = compile_class(name="Deep", code=code, base=ACCOUNT_CLASS_ID, runtime=PUB.id, private=False, enclave=None, owner=None)
    ctx = replace(_ctx(), classes={**_classes(), deep.id: deep})
    objects = _objects()
    objects[ALICE] = StoredObject(class_id=deep.id, owner=ALICE, fields={"balance": 1})
    tx = make_transaction(key=KEY, sender=ALICE, nonce=1, gas_limit=10**6, gas_payer=ALICE, accounts={"a": ALICE}, script="a.f(0)")
    result = execute_transaction(tx, ctx, objects)
    assert result.rule == "RT-4" and "call depth" in (result.error or "")


def test_dict_iteration_follows_the_canonical_key_order() -> None:
    one = _run("out = []\nfor k in {'b': 1, 'a': 2, 'cc': 3}:\n    out = out + [k]\nreturn out", {})
    two = _run("out = []\nfor k in {'cc': 3, 'a': 2, 'b': 1}:\n    out = out + [k]\nreturn out", {})
    assert one.return_value == two.return_value == ["a", "b", "cc"]


def test_new_cannot_mint_a_balance() -> None:
    note = "class Note(Object):\n    \"\"\"A plain object.\"\"\"\n"
    cls = compile_class(name="Note", code=note, base=None, runtime=PUB.id, private=False, enclave=None, owner=None)
    ctx = replace(_ctx(), classes={**_classes(), cls.id: cls})
    assert _run("n = new('Note', balance=1000000)", {"a": ALICE}, ctx=ctx).rule == "MINT-5"
