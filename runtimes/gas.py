"""Gas: what execution costs and where it stops (RT-4).

RT-4 asks that the same transaction on the same state gives the same result,
logs and gas on every node. Gas is therefore counted in units of work that
the interpreter can see exactly, never in time: one unit per evaluated
syntax node, a fixed price per method dispatch, and a price per byte of the
canonical encoding of what is written or logged. The limits (loop length,
call depth, integer range) bound the work a single step may do, so a node can
never be made to spend more than the gas it is paid for.

Every constant is a field of :class:`GasSchedule`, a frozen value a chain may
replace as a whole; the defaults are the reference schedule documented in
``docs/SAGAPYTHON.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sagachain.core.encoding import INT_MAX, INT_MIN
from sagachain.errors import ExecutionError

RT_4 = "RT-4"


@dataclass(frozen=True, slots=True, kw_only=True)
class GasSchedule:
    """The RT-4 price list and limits of the SagaPython runtime."""

    script_byte: int = 1  # per byte of transaction script source: parsing is work too
    node: int = 1  # per evaluated statement or expression node
    call: int = 25  # per method dispatch through the CMI (CMI-1)
    write_byte: int = 2  # per byte of the canonical encoding of a value written or an object created
    log_byte: int = 1  # per byte of the canonical encoding of a logged value
    item_built: int = 1  # per element (or character/byte) of a list, str or bytes built by `+`
    max_loop: int = 1000  # most iterations one `for` loop may run
    max_call_depth: int = 8  # deepest chain of nested method calls

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"GasSchedule.{f.name} must be a non-negative int, got {value!r}")
        for name in ("max_loop", "max_call_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"GasSchedule.{name} must be at least 1, got {getattr(self, name)}")


class GasMeter:
    """Counts gas against a transaction's limit; raises RT-4 the moment it is exceeded.

    ``used`` may end one charge above ``limit`` (the charge that broke it);
    callers report ``min(used, limit)`` as the gas of a failed transaction.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, units: int, what: str) -> None:
        self.used += units
        if self.used > self.limit:
            raise ExecutionError(
                RT_4, f"out of gas: used {self.used} of limit {self.limit} while charging {what}; raise the transaction's gas limit"
            )

    @property
    def reported(self) -> int:
        """Gas to report: what was consumed, never more than the limit."""
        return min(self.used, self.limit)


def check_rt_4_int(value: int) -> int:
    """Return ``value`` if every node can store and hash it (OBJ-5's integer range), else fail the transaction."""
    if INT_MIN <= value <= INT_MAX:
        return value
    raise ExecutionError(RT_4, f"integer {value} is outside [{INT_MIN}, {INT_MAX}], the range every node can store; keep values smaller")
