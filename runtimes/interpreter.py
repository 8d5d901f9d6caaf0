"""The SagaPython interpreter: runs a checked script and the methods it calls (RT-4).

It walks the syntax tree itself instead of compiling to Python bytecode, for
two reasons. Gas must be counted in units every node agrees on (evaluated
syntax nodes, dispatches, bytes written), which bytecode would hide. And every
method call must pass the CMI (CMI-1..CMI-4), which only an interpreter that
owns the call operation can guarantee.

Values are ints, str, bytes, bool, None, lists, dicts and object references
(:class:`~sagachain.core.encoding.ObjRef`). Lists and dicts are never mutated
in place, so a value read from an object field can be shared freely. Error
messages are the interpreter's own (never Python's), so a failed transaction
records the same error text on every Python version.
"""

from __future__ import annotations

import ast
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sagachain.core.encoding import ObjRef, derive_id, encode
from sagachain.core.objects import ACCOUNT_CLASS_ID, BALANCE_FIELD, StoredObject
from sagachain.core.tx import Transaction
from sagachain.errors import ExecutionError, RuleViolation, SagaError, ScriptError, ScriptFailure
from runtimes.cmi import Dispatch, check_placement, class_chain, dispatch, object_enclave
from runtimes.context import ExecutionContext, ExecutionResult, ObjectView
from runtimes.system_classes import NativeCall, call_native
from sagachain.core.system import NATIVE_CLASSES
from runtimes.gas import GasMeter, check_rt_4_int
from runtimes.subset import check_class_source, check_script

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_HASHABLE = (int, str, bytes, bool, type(None), ObjRef)


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class _Frame:
    """One activation: a script or a method call."""

    where: str  # "script" or "Class.method", for error messages
    account: bytes  # the account messages from this frame are sent as
    caller: bytes  # the account that sent the message being run
    self_id: bytes | None = None
    locals: dict[str, Any] = field(default_factory=dict)
    line: int = 1


def _type_name(value: Any) -> str:
    return "object" if isinstance(value, ObjRef) else type(value).__name__


class Interpreter:
    """Runs one transaction against a view of the ledger; collects writes, logs and gas."""

    def __init__(self, tx: Transaction, ctx: ExecutionContext, view: ObjectView) -> None:
        self.tx = tx
        self.tx_id = tx.id
        self.ctx = ctx
        self.view = view
        self.schedule = ctx.gas
        self.meter = GasMeter(tx.gas_limit)
        self.writes: dict[bytes, StoredObject | None] = {}
        self.log: list[Any] = []
        self.declared = frozenset(tx.account_ids())
        self.depth = 0
        self.created = 0
        self.frame = _Frame(where="script", account=tx.sender, caller=tx.sender)

    # -- running ---------------------------------------------------------

    def run(self) -> ExecutionResult:
        try:
            self.meter.charge(self.schedule.script_byte * len(self.tx.script.encode()), "the script's bytes")
            tree = check_script(self.tx.script)
            aliases = {use.alias: ObjRef(use.account) for use in self.tx.accounts}
            value = self._body(tree.body, self.frame, aliases)
            self._storable(value, "the script's return value")
        except ExecutionError as exc:
            return self._failed(exc.rule, exc.message)
        except ScriptFailure as exc:
            return self._failed(None, exc.message)
        except ScriptError as exc:  # TX-1: the message already names the line
            return ExecutionResult(ok=False, rule=exc.rule, error=f"{exc.rule}: {exc.message}", gas_used=self.meter.reported, writes={}, log=())
        except RuleViolation as exc:  # OBJ-5 from encoding
            return self._failed(exc.rule, exc.message)
        return ExecutionResult(
            ok=True, rule=None, error=None, gas_used=self.meter.reported, writes=self.writes, log=tuple(self.log), return_value=value
        )

    def _failed(self, rule: str | None, message: str) -> ExecutionResult:
        where = f"{self.frame.where} line {self.frame.line}"
        text = f"{rule}: {where}: {message}" if rule else f"{where}: {message}"
        return ExecutionResult(ok=False, rule=rule, error=text, gas_used=self.meter.reported, writes={}, log=())

    def _body(self, body: list[ast.stmt], frame: _Frame, bindings: dict[str, Any]) -> Any:
        outer = self.frame
        self.frame = frame
        frame.locals.update(bindings)
        try:
            self._block(body)
        except _Return as ret:
            self.frame = outer
            return ret.value
        except (_Break, _Continue):
            raise ScriptFailure("break or continue outside a loop") from None
        self.frame = outer
        return None

    # -- objects ---------------------------------------------------------

    def load(self, oid: bytes) -> StoredObject | None:
        if oid in self.writes:
            return self.writes[oid]
        return self.view.get(oid)

    def _store(self, oid: bytes, obj: StoredObject, what: str) -> None:
        size = len(self._storable(obj.fields, what))
        self.meter.charge(self.schedule.write_byte * size, what)
        self.writes[oid] = obj

    def _store_or_delete(self, oid: bytes, obj: StoredObject | None, what: str) -> None:
        if obj is None:
            self.meter.charge(self.schedule.write_byte, what)
            self.writes[oid] = None
        else:
            self._store(oid, obj, what)

    def _log_value(self, value: Any) -> None:
        size = len(self._storable(value, "a logged value"))
        self.meter.charge(self.schedule.log_byte * size, "a log entry")
        self.log.append(value)

    def _storable(self, value: Any, what: str) -> bytes:
        try:
            return encode(value)
        except RuleViolation as exc:
            raise ExecutionError("OBJ-5", f"{what} cannot be stored: {exc.message}") from None

    # -- statements ------------------------------------------------------

    def _block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self._statement(stmt)

    def _statement(self, node: ast.stmt) -> None:
        frame = self.frame
        frame.line = node.lineno
        self.meter.charge(self.schedule.node, "a statement")
        if isinstance(node, ast.Assign):
            self._assign(node.targets[0], self._expr(node.value))
        elif isinstance(node, ast.AugAssign):
            current = self._expr(self._as_load(node.target))
            self._assign(node.target, self._binop(node.op, current, self._expr(node.value)))
        elif isinstance(node, ast.If):
            self._block(node.body if self._expr(node.test) else node.orelse)
        elif isinstance(node, ast.For):
            self._for(node)
        elif isinstance(node, ast.Return):
            raise _Return(None if node.value is None else self._expr(node.value))
        elif isinstance(node, ast.Expr):
            if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                self._expr(node.value)
        elif isinstance(node, ast.Break):
            raise _Break()
        elif isinstance(node, ast.Continue):
            raise _Continue()

    def _as_load(self, target: ast.expr) -> ast.expr:
        if isinstance(target, ast.Name):
            return ast.Name(id=target.id, ctx=ast.Load())
        assert isinstance(target, ast.Attribute)
        return ast.Attribute(value=target.value, attr=target.attr, ctx=ast.Load())

    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.frame.locals[target.id] = value
            return
        assert isinstance(target, ast.Attribute)  # self.field, checked by the subset
        self._set_field(target.attr, value)

    def _set_field(self, name: str, value: Any) -> None:
        if name == BALANCE_FIELD:
            raise ExecutionError("MINT-5", "a script may not set balance; coin moves only through pay()")
        self_id = self.frame.self_id
        assert self_id is not None
        obj = self.load(self_id)
        assert obj is not None
        self._store(self_id, obj.with_fields(**{name: value}), f"field {name}")

    def _for(self, node: ast.For) -> None:
        items = self._expr(node.iter)
        if isinstance(items, dict):  # canonical key order: the order every node decodes a stored dict in
            items = sorted(items, key=encode)
        if not isinstance(items, (list, str, bytes)):
            raise ScriptFailure(f"cannot loop over a value of type {_type_name(items)}")
        self._bound(len(items))
        name = node.target.id  # type: ignore[attr-defined]
        for item in items:
            self.frame.locals[name] = item
            try:
                self._block(node.body)
            except _Break:
                break
            except _Continue:
                continue

    def _bound(self, length: int) -> None:
        if length > self.schedule.max_loop:
            raise ExecutionError("RT-4", f"a loop of {length} iterations exceeds the bound of {self.schedule.max_loop}; split the work")

    # -- expressions -----------------------------------------------------

    def _expr(self, node: ast.expr) -> Any:
        self.meter.charge(self.schedule.node, "an expression")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            try:
                return self.frame.locals[node.id]
            except KeyError:
                raise ScriptFailure(f"name {node.id!r} is not defined") from None
        if isinstance(node, ast.Attribute):
            return self._read_field(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node.op, self._expr(node.left), self._expr(node.right))
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            value: Any = None
            for sub in node.values:
                value = self._expr(sub)
                if bool(value) != is_and:
                    return value
            return value
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            return self._expr(node.body) if self._expr(node.test) else self._expr(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._expr(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values):
                assert k is not None
                out[self._key(self._expr(k))] = self._expr(v)
            return out
        if isinstance(node, ast.Subscript):
            return self._index(self._expr(node.value), self._expr(node.slice))
        raise ScriptFailure(f"cannot evaluate {type(node).__name__}")  # unreachable after check_script

    def _read_field(self, node: ast.Attribute) -> Any:
        if not (isinstance(node.value, ast.Name) and node.value.id == "self" and self.frame.self_id is not None):
            raise ScriptFailure(f"cannot read .{node.attr} of another object; call one of its methods instead")
        obj = self.load(self.frame.self_id)
        assert obj is not None
        if node.attr not in obj.fields:
            raise ScriptFailure(f"the object has no field {node.attr!r}; set it first or give it a value at creation")
        return obj.fields[node.attr]

    def _key(self, value: Any) -> Any:
        if not isinstance(value, _HASHABLE):
            raise ScriptFailure(f"a {_type_name(value)} cannot be a dict key")
        return value

    def _index(self, container: Any, key: Any) -> Any:
        if isinstance(container, dict):
            if self._key(key) not in container:
                raise ScriptFailure(f"key {key!r} is not in the dict")
            return container[key]
        if isinstance(container, (list, str, bytes)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise ScriptFailure(f"index must be an int, got {_type_name(key)}")
            if not -len(container) <= key < len(container):
                raise ScriptFailure(f"index {key} is out of range for length {len(container)}")
            return container[key]
        raise ScriptFailure(f"cannot index a value of type {_type_name(container)}")

    def _binop(self, op: ast.operator, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if isinstance(op, ast.Add):
            if ints:
                return check_rt_4_int(left + right)
            for kind in (str, bytes, list):
                if isinstance(left, kind) and isinstance(right, kind):
                    result = left + right
                    self.meter.charge(self.schedule.item_built * len(result), "building a sequence")
                    return result
        elif ints:
            if isinstance(op, ast.Sub):
                return check_rt_4_int(left - right)
            if isinstance(op, ast.Mult):
                return check_rt_4_int(left * right)
            if right == 0:
                raise ScriptFailure("division by zero")
            if isinstance(op, ast.FloorDiv):
                return check_rt_4_int(left // right)
            if isinstance(op, ast.Mod):
                return check_rt_4_int(left % right)
        raise ScriptFailure(f"{type(op).__name__} is not defined for {_type_name(left)} and {_type_name(right)}")

    def _unary(self, node: ast.UnaryOp) -> Any:
        value = self._expr(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not isinstance(value, int):
            raise ScriptFailure(f"unary {type(node.op).__name__} needs an int, got {_type_name(value)}")
        return check_rt_4_int(-value if isinstance(node.op, ast.USub) else +value)

    def _compare(self, node: ast.Compare) -> bool:
        left = self._expr(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self._expr(right_node)
            self._charge_items(left, right)
            try:
                ok = _COMPARE[type(op)](left, right)
            except TypeError:
                raise ScriptFailure(f"cannot compare {_type_name(left)} with {_type_name(right)} by {type(op).__name__}") from None
            if not ok:
                return False
            left = right
        return True

    def _charge_items(self, *values: Any) -> None:
        """Comparing or scanning a sequence costs per element, like building one."""
        size = sum(len(v) for v in values if isinstance(v, (list, dict, str, bytes)))
        if size:
            self.meter.charge(self.schedule.item_built * size, "scanning a sequence")

    # -- calls -----------------------------------------------------------

    def _call(self, node: ast.Call) -> Any:
        args = [self._expr(a) for a in node.args]
        if isinstance(node.func, ast.Name):
            kwargs = {k.arg: self._expr(k.value) for k in node.keywords if k.arg is not None}
            return self._builtin(node.func.id, args, kwargs)
        assert isinstance(node.func, ast.Attribute)
        receiver = self._expr(node.func.value)
        if not isinstance(receiver, ObjRef):
            raise ScriptFailure(f"cannot call .{node.func.attr}() on a {_type_name(receiver)}; only objects have methods")
        return self.send(receiver.id, node.func.attr, args)

    def send(self, target: bytes, method: str, args: list[Any]) -> Any:
        """Deliver a message through the CMI and run the method it resolves to."""
        self.meter.charge(self.schedule.call, f"dispatching {method}")
        if self.depth >= self.schedule.max_call_depth:
            raise ExecutionError("RT-4", f"call depth exceeds {self.schedule.max_call_depth} at {method}(); flatten the calls")
        obj = self.load(target)
        if obj is None:
            raise ScriptFailure(f"no object {target.hex()[:12]} to receive {method}()")
        sender = self.frame.account
        resolved = dispatch(
            self.ctx, target=target, obj=obj, method=method, sender=sender, signer=self.tx.sender, declared=self.declared
        )
        if len(args) != len(resolved.method.params):
            raise ScriptFailure(f"{resolved.defining.name}.{method} takes {len(resolved.method.params)} arguments, got {len(args)}")
        self.depth += 1
        try:
            if resolved.code is None:
                return self._native(resolved, obj, args)
            return self._method(resolved, obj, args, sender)
        finally:
            self.depth -= 1

    def _method(self, resolved: Dispatch, obj: StoredObject, args: list[Any], sender: bytes) -> Any:
        assert resolved.code is not None
        cls_tree = check_class_source(resolved.code)
        fn = next(i for i in cls_tree.body if isinstance(i, ast.FunctionDef) and i.name == resolved.method.name)
        frame = _Frame(
            where=f"{resolved.defining.name}.{fn.name}",
            account=obj.owner,
            caller=sender,
            self_id=resolved.target,
        )
        bindings = {"self": ObjRef(resolved.target), **dict(zip(resolved.method.params, args))}
        return self._body(fn.body, frame, bindings)

    # -- native methods of ClassAccount ------------------------------------

    def _native(self, resolved: Dispatch, obj: StoredObject, args: list[Any]) -> Any:
        if resolved.defining.id in NATIVE_CLASSES:
            call = NativeCall(
                load=self.load,
                store=self._store_or_delete,
                sender=self.frame.account,
                signer=self.tx.sender,
                time=self.ctx.time,
                written=lambda oid: oid in self.writes,
                verify=self.ctx.verify,
                epoch_problem=self.ctx.epoch_problem,
                log=self._log_value,
            )
            return call_native(call, resolved.defining.id, resolved.target, obj, resolved.method.name, args)
        if resolved.defining.id != ACCOUNT_CLASS_ID:
            raise ExecutionError("CMI-1", f"class {resolved.defining.name} publishes no code for {resolved.method.name}()")
        if resolved.method.name == "balance":
            return int(obj.fields.get(BALANCE_FIELD, 0))
        to, amount = args
        return self._pay(resolved.target, obj, to, amount)

    def _pay(self, source: bytes, obj: StoredObject, to: Any, amount: Any) -> None:
        if not isinstance(to, ObjRef) or not isinstance(amount, int) or isinstance(amount, bool):
            raise ScriptFailure("pay(to, amount) takes an account and an int")
        if amount <= 0:
            raise ScriptFailure(f"pay amount must be positive, got {amount}")
        if self.ctx.account_enclave(source) is not None:
            raise ExecutionError("MINT-1", "an enclave account holds no SagaCoin and cannot pay")
        dest = self.load(to.id)
        if dest is None or dest.owner != to.id:
            raise ScriptFailure(f"pay target {to.id.hex()[:12]} is not an account")
        if self.ctx.account_enclave(to.id) is not None:
            raise ExecutionError("MINT-1", "an enclave account may not receive SagaCoin")
        check_placement(self.ctx, to.id, self.declared, object_enclave(self.ctx, dest), "pay target")
        have = int(obj.fields.get(BALANCE_FIELD, 0))
        if have < amount:
            raise ScriptFailure(f"insufficient balance: {have} < {amount} (gas reserved for this transaction is not spendable)")
        self._store(source, obj.with_fields(**{BALANCE_FIELD: have - amount}), "a balance")
        dest = self.load(to.id)
        assert dest is not None
        self._store(to.id, dest.with_fields(**{BALANCE_FIELD: check_rt_4_int(int(dest.fields.get(BALANCE_FIELD, 0)) + amount)}), "a balance")

    # -- built-ins -------------------------------------------------------

    def _builtin(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if name == "new":
            return self._new(args, kwargs)
        if name == "require":
            if len(args) not in (1, 2):
                raise ScriptFailure("require(condition, message) takes one or two arguments")
            if not args[0]:
                raise ScriptFailure(f"requirement failed: {args[1] if len(args) == 2 else 'require()'}")
            return None
        if name == "log":
            for value in args:
                self._log_value(value)
            return None
        if name == "caller":
            return ObjRef(self.frame.caller)
        if name == "signer":
            return ObjRef(self.tx.sender)
        return _PURE[name](self, args)

    def _new(self, args: list[Any], fields: dict[str, Any]) -> ObjRef:
        if len(args) != 1 or not isinstance(args[0], str):
            raise ScriptFailure('new("ClassName", field=value, ...) takes the class name as a string')
        cls = next((c for c in self.ctx.classes.values() if c.name == args[0]), None)
        if cls is None:
            raise ScriptFailure(f"no class named {args[0]!r} is registered")
        if BALANCE_FIELD in fields:
            raise ExecutionError("MINT-5", "new() may not set balance; coin exists only in accounts and moves only through pay()")
        chain = class_chain(self.ctx, cls.id)
        if any(c.id == ACCOUNT_CLASS_ID for c in chain):
            raise ScriptFailure(f"{cls.name} is an account class; accounts are registered, not created by new()")
        owner = self.frame.account
        owner_enclave = self.ctx.account_enclave(owner)
        class_enclave = next((c.enclave for c in chain if c.enclave is not None), None)
        if class_enclave is not None and class_enclave != owner_enclave:
            rule = "CMI-2" if owner_enclave is None else "CMI-4"
            raise ExecutionError(rule, f"{cls.name} is bound to enclave {class_enclave}; only that enclave's accounts may own one")
        check_placement(self.ctx, owner, self.declared, owner_enclave or class_enclave, f"new {cls.name}")
        self.created += 1
        oid = derive_id("object", self.tx_id, self.created)
        self._store(oid, StoredObject(class_id=cls.id, owner=owner, fields=dict(fields)), f"new {cls.name}")
        return ObjRef(oid)


def _len(it: Interpreter, args: list[Any]) -> int:
    if len(args) != 1 or not isinstance(args[0], (list, str, bytes, dict)):
        raise ScriptFailure("len() takes one list, str, bytes or dict")
    return len(args[0])


def _range(it: Interpreter, args: list[Any]) -> list[int]:
    if not 1 <= len(args) <= 2 or not all(isinstance(a, int) for a in args):
        raise ScriptFailure("range() takes one or two ints")
    start, stop = (0, args[0]) if len(args) == 1 else args
    it._bound(max(0, stop - start))
    return list(range(start, stop))


def _extreme(pick: Callable[..., Any]) -> Callable[[Interpreter, list[Any]], Any]:
    def run(it: Interpreter, args: list[Any]) -> Any:
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
        it._charge_items(values)
        if not values:
            raise ScriptFailure(f"{pick.__name__}() of nothing")
        try:
            return pick(values)
        except TypeError:
            raise ScriptFailure(f"{pick.__name__}() of values that do not compare") from None

    return run


def _abs(it: Interpreter, args: list[Any]) -> int:
    if len(args) != 1 or not isinstance(args[0], int):
        raise ScriptFailure("abs() takes one int")
    return check_rt_4_int(abs(args[0]))


def _put(it: Interpreter, args: list[Any]) -> dict[Any, Any]:
    if len(args) != 3 or not isinstance(args[0], dict):
        raise ScriptFailure("put(dict, key, value) returns a copy of dict with key set to value")
    out = dict(args[0])
    out[it._key(args[1])] = args[2]
    it.meter.charge(it.schedule.item_built * len(out), "building a dict")
    return out


def _str(it: Interpreter, args: list[Any]) -> str:
    if len(args) != 1 or not isinstance(args[0], (int, str)):
        raise ScriptFailure("str() takes one int or str")
    return str(args[0]) if not isinstance(args[0], bool) else ("True" if args[0] else "False")


_PURE: dict[str, Callable[[Interpreter, list[Any]], Any]] = {
    "len": _len,
    "range": _range,
    "min": _extreme(min),
    "max": _extreme(max),
    "abs": _abs,
    "put": _put,
    "str": _str,
}


# The interpreter recurses once per nesting level (at most MAX_NESTING per
# method, max_call_depth methods deep): a few thousand Python frames at worst.
# The limit is raised to that when the runtime is loaded, so the outcome never
# depends on how deep the caller's own stack happens to be.
_FRAMES_NEEDED = 8_000
if sys.getrecursionlimit() < _FRAMES_NEEDED:
    sys.setrecursionlimit(_FRAMES_NEEDED)


def execute_transaction(tx: Transaction, ctx: ExecutionContext, view: ObjectView) -> ExecutionResult:
    """Run ``tx``'s script (RT-4); never raises for anything the script does."""
    try:
        return Interpreter(tx, ctx, view).run()
    except SagaError as exc:  # a malformed registry (e.g. a class with a broken base) fails the tx, named
        return ExecutionResult(ok=False, rule=exc.rule, error=str(exc), gas_used=tx.gas_limit, writes={}, log=())
