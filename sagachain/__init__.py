"""SagaChain Enclave Lab: simulator, node and auditor of a sharded ledger with enclave shards.

This package is a light facade: scenario authors import ``Scenario`` from
``sagachain.sim``; the protocol core is ``sagachain.core``; the ``sagachain``
command is ``sagachain.cli``.
"""

__version__ = "0.1.0"
