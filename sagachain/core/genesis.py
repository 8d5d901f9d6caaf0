"""The genesis record: parameters and the initial, public state of a chain.

Everything the rules need to judge the first block is here: the money and gas
parameters, the runtimes, classes, node accounts, shards with their
committees, enclaves, the public header of every account (OBJ-3) and the full
objects of the non-enclave accounts. Enclave objects are not here; each
enclave's initial off-chain state is committed to by a hash only (TX-3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sagachain.core.encoding import hash_value
from sagachain.core.objects import (
    AccountRecord,
    ClassRecord,
    EnclaveRecord,
    NodeRecord,
    RuntimeRecord,
    ShardRecord,
    StoredObject,
)
from sagachain.errors import InputError

CLS3_STRICT = "strict"
CLS3_PERMISSIVE = "permissive"
PPM = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    """Chain parameters, each named after the rule that uses it."""

    block_reward: int = 50  # MINT-3: most a public shard's block may mint
    tax_ppm: int = 100_000  # GAS-4: Foundation share of every fee, parts per million
    gas_price: int = 1  # coin per gas unit
    gas_window: int = 8  # GAS-3: blocks per shard in the rolling window
    min_gas: int = 100  # GAS-3: floor when the window holds no open transaction
    cls3_policy: str = CLS3_STRICT  # CLS-3
    foundation: bytes = b"\0" * 32  # GAS-4: the Foundation account

    def __post_init__(self) -> None:
        if self.cls3_policy not in (CLS3_STRICT, CLS3_PERMISSIVE):
            raise InputError(f"cls3_policy must be 'strict' or 'permissive', got {self.cls3_policy!r}", rule="CLS-3")
        if not 0 <= self.tax_ppm <= PPM:
            raise InputError(f"tax_ppm must be within 0..{PPM}, got {self.tax_ppm}", rule="GAS-4")
        for name in ("block_reward", "gas_price", "gas_window", "min_gas"):
            if getattr(self, name) < (1 if name in ("gas_price", "gas_window") else 0):
                raise InputError(f"parameter {name} is out of range: {getattr(self, name)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicObject:
    id: bytes
    value: StoredObject


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    chain_id: str
    params: Params
    runtimes: tuple[RuntimeRecord, ...]
    classes: tuple[ClassRecord, ...]
    nodes: tuple[NodeRecord, ...]
    shards: tuple[ShardRecord, ...]
    enclaves: tuple[EnclaveRecord, ...]
    accounts: tuple[AccountRecord, ...]
    objects: tuple[PublicObject, ...] = field(default=())

    @property
    def hash(self) -> bytes:
        return hash_value(["genesis", self])

    def supply(self) -> int:
        """Genesis supply: every coin in the public objects' balances (MINT-5)."""
        return sum(int(o.value.fields.get("balance", 0) or 0) for o in self.objects)
