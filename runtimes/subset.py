"""The SagaPython subset: which Python a script or a class may use (TX-1, RT-4).

A transaction script and a class body are parsed with :mod:`ast` and walked
once before anything runs. Only constructs whose meaning is the same on every
machine and whose cost the interpreter can meter are accepted; anything else
is refused with a :class:`~sagachain.errors.ScriptError` naming the line and
the construct, so a script author learns what to change without reading the
interpreter. The accepted subset is documented in ``docs/SAGAPYTHON.md``.

Left out on purpose: floats and ``/`` (their rounding is not part of the
canonical encoding, OBJ-5), ``while`` (a bound is what makes gas predictable),
imports, ``def``/``lambda``/comprehensions in scripts (scripts are straight
code; classes hold the functions), mutation of lists and dicts in place (values
read from an object must not change behind the object's back), and any name
that starts with ``_`` (no way into Python's internals).
"""

from __future__ import annotations

import ast
from functools import lru_cache

from sagachain.core.objects import ALLOW_KINDS
from sagachain.errors import ScriptError

MAX_NESTING = 32  # deepest nesting of blocks and expressions together: bounds the interpreter's recursion (RT-4)
BUILTINS = frozenset({"len", "range", "min", "max", "abs", "require", "log", "new", "caller", "signer", "put", "str"})

_EXPRESSIONS = (
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.Call,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Subscript,
)
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)
_UNARY = (ast.USub, ast.UAdd, ast.Not)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_HINTS = {
    "While": "use a bounded `for` over range(n)",
    "Div": "use // (integer division); floats are not allowed (OBJ-5)",
    "Import": "scripts cannot import; use the built-ins",
    "ImportFrom": "scripts cannot import; use the built-ins",
    "FunctionDef": "define methods inside a class, not in a script",
    "Lambda": "define methods inside a class",
    "ListComp": "build the list with a `for` loop and +",
    "Try": "use require(condition, message) to fail a transaction",
    "Raise": "use require(condition, message) to fail a transaction",
    "Global": "keep state in object fields (self.name)",
    "Nonlocal": "keep state in object fields (self.name)",
    "With": "not needed: there is no I/O in a transaction",
    "Delete": "assign a new value instead",
    "JoinedStr": "concatenate with + and str()",
}


def _fail(node: ast.AST, construct: str, hint: str | None = None) -> ScriptError:
    line = getattr(node, "lineno", 1)
    hint = hint or _HINTS.get(construct, "it is outside the SagaPython subset (docs/SAGAPYTHON.md)")
    return ScriptError(f"not allowed in SagaPython; {hint}", line=line, construct=construct)


def _parse(source: str, what: str) -> ast.Module:
    if not isinstance(source, str):
        raise ScriptError(f"{what} must be text, got {type(source).__name__}", line=1, construct="source")
    try:
        return ast.parse(source, mode="exec")
    except SyntaxError as exc:  # Python's wording varies between versions; only the line is kept
        raise ScriptError("the source is not valid Python syntax", line=exc.lineno or 1, construct="syntax") from None
    except (RecursionError, MemoryError):
        raise ScriptError(f"nested more than {MAX_NESTING} levels deep", line=1, construct="nesting") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise ScriptError(f"unreadable source: {exc}", line=1, construct="source") from None


class _Checker:
    """Walks a tree once and raises on the first construct outside the subset."""

    def __init__(self, in_method: bool) -> None:
        self.in_method = in_method
        self.depth = 0

    def block(self, body: list[ast.stmt]) -> None:
        self.depth += 1
        try:
            if body and self.depth > MAX_NESTING:
                raise _fail(body[0], "nesting", f"blocks nest at most {MAX_NESTING} levels deep")
            for stmt in body:
                self.statement(stmt)
        finally:
            self.depth -= 1

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise _fail(node, "chained assignment", "assign one target at a time")
            self.target(node.targets[0])
            self.expr(node.value)
        elif isinstance(node, ast.AugAssign):
            self.target(node.target)
            self.operator(node, node.op)
            self.expr(node.value)
        elif isinstance(node, ast.If):
            self.expr(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.For):
            if not isinstance(node.target, ast.Name):
                raise _fail(node, "for with unpacking", "loop over one name: for x in items")
            self.name(node.target, node.target.id)
            if node.orelse:
                raise _fail(node, "for-else", "put the code after the loop")
            self.expr(node.iter)
            self.block(node.body)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.expr(node.value)
        elif isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return  # a docstring or comment string
            if not isinstance(node.value, ast.Call):
                raise _fail(node, "bare expression", "an expression statement must be a call")
            self.expr(node.value)
        elif isinstance(node, (ast.Pass, ast.Break, ast.Continue)):
            return
        else:
            raise _fail(node, type(node).__name__)

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.name(node, node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            if not self.in_method:
                raise _fail(node, "self outside a method", "scripts change objects by calling their methods")
            self.name(node, node.attr)
        else:
            raise _fail(node, f"assignment to {type(node).__name__}", "assign to a name or to self.field; build new lists with +")

    def name(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            raise _fail(node, f"name {name!r}", "names starting with _ are reserved")

    def operator(self, node: ast.AST, op: ast.AST) -> None:
        if not isinstance(op, _BINOPS):
            raise _fail(node, type(op).__name__)

    def expr(self, node: ast.expr) -> None:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise _fail(node, "nesting", f"expressions nest at most {MAX_NESTING} levels deep; use intermediate names")
            self._expr(node)
        finally:
            self.depth -= 1

    def _expr(self, node: ast.expr) -> None:
        if not isinstance(node, _EXPRESSIONS):
            raise _fail(node, type(node).__name__)
        if isinstance(node, ast.Constant):
            if node.value is not None and not isinstance(node.value, (bool, int, str, bytes)):
                raise _fail(node, f"{type(node.value).__name__} literal", "only int, str, bytes, bool and None (OBJ-5)")
        elif isinstance(node, ast.Name):
            self.name(node, node.id)
        elif isinstance(node, ast.Attribute):
            self.name(node, node.attr)
            self.expr(node.value)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.BinOp):
            self.operator(node, node.op)
            self.expr(node.left)
            self.expr(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                raise _fail(node, type(node.op).__name__)
            self.expr(node.operand)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.expr(value)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if not isinstance(op, _COMPARE):
                    raise _fail(node, type(op).__name__, "use == and != (identity is not defined on values)")
            self.expr(node.left)
            for value in node.comparators:
                self.expr(value)
        elif isinstance(node, ast.IfExp):
            self.expr(node.test)
            self.expr(node.body)
            self.expr(node.orelse)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    raise _fail(element, "starred element")
                self.expr(element)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if key is None:
                    raise _fail(node, "dict unpacking", "write the keys out")
                self.expr(key)
                self.expr(value)
        elif isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise _fail(node, "slice", "index one element at a time")
            self.expr(node.value)
            self.expr(node.slice)

    def call(self, node: ast.Call) -> None:
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _fail(arg, "*args", "pass arguments one by one")
            self.expr(arg)
        if isinstance(node.func, ast.Name):
            if node.func.id not in BUILTINS:
                raise _fail(node, f"call of {node.func.id!r}", f"call a method on an object, or a built-in: {', '.join(sorted(BUILTINS))}")
            if node.keywords and node.func.id != "new":
                raise _fail(node, "keyword arguments", "only new(ClassName, field=value) takes keywords")
        elif isinstance(node.func, ast.Attribute):
            self.expr(node.func)
            if node.keywords:
                raise _fail(node, "keyword arguments", "methods take positional arguments")
        else:
            raise _fail(node, "call of an expression", "call a method on an object: obj.method(args)")
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _fail(node, "**kwargs", "name each field")
            self.name(node, keyword.arg)
            self.expr(keyword.value)


@lru_cache(maxsize=512)
def check_script(source: str) -> ast.Module:
    """Parse a transaction script and check it is in the subset (TX-1); raise ScriptError if not."""
    tree = _parse(source, "a transaction script")
    _Checker(in_method=False).block(tree.body)
    return tree


@lru_cache(maxsize=512)
def check_class_source(source: str) -> ast.ClassDef:
    """Parse a class definition and check it is in the subset; raise ScriptError if not.

    The source holds exactly one ``class Name(Base):`` whose body is an
    optional docstring, an optional ``ALLOW = {"method": "any"|"owner"|"signer"}``
    table, and methods whose first parameter is ``self``.
    """
    tree = _parse(source, "a class definition")
    classes = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    if len(classes) != 1 or not isinstance(classes[0], ast.ClassDef):
        node = classes[0] if classes else tree
        raise _fail(node, "class source", "the source must hold exactly one class definition")
    cls = classes[0]
    if cls.decorator_list or cls.keywords or len(cls.bases) != 1 or not isinstance(cls.bases[0], ast.Name):
        raise _fail(cls, "class header", "write `class Name(Base):` with exactly one base class")
    _Checker(in_method=False).name(cls, cls.name)
    seen: set[str] = set()
    for item in cls.body:
        if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str):
            continue
        if isinstance(item, ast.Assign) and [getattr(t, "id", None) for t in item.targets] == ["ALLOW"]:
            _allow_table(item)
            continue
        if not isinstance(item, ast.FunctionDef):
            raise _fail(item, f"{type(item).__name__} in a class body", "a class body holds ALLOW and methods only")
        _check_method(item)
        if item.name in seen:
            raise _fail(item, f"method {item.name!r} defined twice")
        seen.add(item.name)
    return cls


def _check_method(fn: ast.FunctionDef) -> None:
    args = fn.args
    if fn.decorator_list or fn.returns is not None:
        raise _fail(fn, "decorated or annotated method", "write plain `def name(self, a, b):`")
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg or args.defaults:
        raise _fail(fn, "method signature", "methods take plain positional parameters without defaults")
    if not args.args or args.args[0].arg != "self":
        raise _fail(fn, "method signature", "the first parameter of a method is self")
    checker = _Checker(in_method=True)
    checker.name(fn, fn.name)
    for arg in args.args:
        if arg.annotation is not None:
            raise _fail(fn, "annotation", "drop the type annotations")
        checker.name(fn, arg.arg)
    checker.block(fn.body)


def _allow_table(node: ast.Assign) -> dict[str, str]:
    value = node.value
    if not isinstance(value, ast.Dict):
        raise _fail(node, "ALLOW", 'ALLOW is a dict literal such as {"deposit": "any"}')
    table: dict[str, str] = {}
    for key, kind in zip(value.keys, value.values):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise _fail(node, "ALLOW key", "keys are method names as strings")
        if not (isinstance(kind, ast.Constant) and kind.value in ALLOW_KINDS):
            raise _fail(node, "ALLOW value", f"each method allows one of {', '.join(ALLOW_KINDS)}")
        table[key.value] = kind.value
    return table


def allow_table(cls: ast.ClassDef) -> dict[str, str]:
    """The ALLOW table of a checked class (empty when it declares none)."""
    for item in cls.body:
        if isinstance(item, ast.Assign) and [getattr(t, "id", None) for t in item.targets] == ["ALLOW"]:
            return _allow_table(item)
    return {}
