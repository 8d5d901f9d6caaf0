"""What the rule checks borrow from the layers above the core.

The core cannot import the runtimes (they sit above it), yet some rules need
them: TX-2 and GAS-2 compare an open entry with a re-execution, TX-1 parses a
script, CLS-1 compiles an open class to compare its method table. The layer
that owns the runtime hands these functions in; a check without its tool
skips that comparison and says so in the audit's coverage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagachain.core.block import Block, ObjectUpdate, OpenEntry
from sagachain.core.keys import verify
from sagachain.core.objects import ClassRecord

if TYPE_CHECKING:
    from sagachain.core.ledger import ChainState


@dataclass(frozen=True, slots=True)
class Replay:
    """The result of re-executing an open transaction on the public state."""

    ok: bool
    error: str | None
    gas_used: int
    updates: tuple[ObjectUpdate, ...]
    log: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Tools:
    replay_open: Callable[[ChainState, Block, OpenEntry], Replay] | None = None
    check_script: Callable[[str], str | None] | None = None
    check_class: Callable[[ClassRecord], str | None] | None = None
    # how signatures are checked (TX-1, SH-1, deploys): Ed25519, or the simulator's modelled stand-in
    verify: Callable[[bytes, bytes, bytes], bool] = verify
