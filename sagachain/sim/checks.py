"""The checks every run ends with: invariants, confidentiality, and the auditor's verdict.

A simulation result is only worth reading if the chain it produced is sound,
so every run re-checks, after the fact and from its own outputs:

- supply (MINT-5): the non-enclave balances sum to the circulating supply,
  and circulating plus fees paid out equals the genesis supply;
- single ownership (L2L-3): every account has exactly one holder, its owner
  or the receiver of its pending release;
- no enclave plaintext in public data (TX-3, MEM-4): no text or byte value of
  any enclave's off-chain state (initial or final), and no line of private
  code, occurs in the chain file or in results.json;
- the auditor's verdict on the chain file, exactly as ``sagachain audit``
  gives it (without enclave keys; with ``--crypto modelled`` for such runs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagachain.audit.auditor import audit_chain
from sagachain.core.chainfile import read_chain
from sagachain.core.ledger import ChainState
from shards.enclave_store import EnclaveStore
from shards.tools import tools_for

MIN_SECRET = 6  # shorter values (small words, tiny byte strings) occur in public data by chance


@dataclass
class RunChecks:
    supply: bool
    single_ownership: bool
    plaintext_found: list[str]
    audit_verdict: str
    audit_violations: dict[str, int] = field(default_factory=dict)
    ignored_blocks: int = 0

    @property
    def ok(self) -> bool:
        return self.supply and self.single_ownership and not self.plaintext_found

    def to_json(self) -> dict[str, Any]:
        return {
            "supply": self.supply,
            "single_ownership": self.single_ownership,
            "plaintext_found": len(self.plaintext_found),
            "audit": {"verdict": self.audit_verdict, "violations": self.audit_violations, "ignored_blocks": self.ignored_blocks},
        }


def supply_holds(chain: ChainState) -> bool:
    balances = sum(chain.balance(a) for a in chain.accounts if chain.account_enclave(a) is None)
    return balances == chain.circulating and chain.circulating + chain.tallies.fees == chain.supply


def single_ownership_holds(chain: ChainState) -> bool:
    for account in chain.accounts:
        transit = chain.transit.get(account)
        holders = [transit.to_shard] if transit else [s for s in chain.shards if chain.owns(s, account)]
        if len(holders) != 1:
            return False
    return True


def secrets_of(stores: list[EnclaveStore]) -> set[str]:
    """Every text or byte value held off chain that is long enough to search for."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET:
            found.add(value)
        elif isinstance(value, bytes) and len(value) >= MIN_SECRET:
            found.add(value.hex())
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():  # field names are words public data uses too ("entries")
                walk(item)

    for store in stores:
        for obj in store.objects.values():
            walk(obj.fields)
        for code in store.private_code.values():
            found.update(line.strip() for line in code.splitlines() if len(line.strip()) >= 12 and not line.strip().startswith("class "))
    return found


def plaintext_in(public: bytes, stores: list[EnclaveStore]) -> list[str]:
    """The off-chain values that occur in ``public`` bytes (as UTF-8, or as raw bytes for byte values)."""
    leaked = []
    for secret in sorted(secrets_of(stores)):
        needle = secret.encode()
        if needle in public or (_is_hex(secret) and bytes.fromhex(secret) in public):
            leaked.append(secret)
    return leaked


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) % 2 == 0


def run_checks(chain: ChainState, chain_path: Path, results_bytes: bytes, stores: list[EnclaveStore], crypto: str = "real") -> RunChecks:
    report = audit_chain(read_chain(chain_path), tools_for(crypto))
    public = chain_path.read_bytes() + results_bytes
    return RunChecks(
        supply=supply_holds(chain),
        single_ownership=single_ownership_holds(chain),
        plaintext_found=plaintext_in(public, stores),
        audit_verdict=report.verdict,
        audit_violations=dict(sorted(Counter(v.rule for v in report.violations).items())),
        ignored_blocks=len(report.ignored),
    )
