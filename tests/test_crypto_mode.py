"""crypto: modelled — hash stand-ins for keys and signatures in very large runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainkit import chain_bytes, simulate, small
from sagachain.audit.auditor import audit_chain
from sagachain.core.chainfile import read_chain_bytes
from sagachain.core.keys import ModelledKey, modelled_verify
from sagachain.errors import InputError
from sagachain.sim.scenario import Scenario
from shards.tools import tools_for


def modelled(s: Scenario) -> None:
    small(s)
    s.crypto_mode("modelled")


def test_modelled_signatures_bind_key_and_message() -> None:
    key = ModelledKey.derive("k")
    other = ModelledKey.derive("other")
    signature = key.sign(b"message")
    assert len(signature) == 64 and len(key.public) == 32
    assert modelled_verify(key.public, b"message", signature)
    assert not modelled_verify(other.public, b"message", signature)
    assert not modelled_verify(key.public, b"another", signature)


def test_modelled_run_behaves_like_a_real_one_and_audits_only_in_its_mode(tmp_path: Path) -> None:
    real, fake = simulate(small), simulate(modelled)
    assert real.result.metrics.latencies == fake.result.metrics.latencies  # same virtual time, same outcome
    assert real.result.metrics.committed == fake.result.metrics.committed
    data = chain_bytes(tmp_path, fake.genesis, fake.blocks)
    assert audit_chain(read_chain_bytes(data), tools_for("modelled")).ok
    broken = {v.rule for v in audit_chain(read_chain_bytes(data), tools_for("real")).violations}
    assert {"SH-1", "TX-1"} <= broken  # not real signatures: a real audit says so


def test_unknown_crypto_mode_is_an_input_error() -> None:
    with pytest.raises(InputError, match="crypto mode"):
        Scenario(1).crypto_mode("none")
