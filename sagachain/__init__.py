"""SagaChain Enclave Lab: simulator, node and auditor of a sharded ledger with enclave shards.

This package is a light facade: scenario authors import ``Scenario`` from
``sagachain.sim``; the protocol core is ``sagachain.core``; what the simulator
and the node both build a chain from (declarations, the genesis builder,
workloads) is ``sagachain.world``; the ``sagachain`` command is ``sagachain.cli``.
"""

__version__ = "0.1.0"
