"""What both drivers build a chain from: declarations, the genesis they give, and workloads.

A simulated run and a devnet start from the same kind of declarations (shards,
enclaves, classes, accounts, identities, transactions) and must turn them into
the same genesis, keys and off-chain stores, byte for byte, and draw the same
transactions from the same workload. So that code lives here, once, below
both drivers (the layers of ARCHITECTURE.md): ``sagachain.sim`` extends the
declarations with what only a simulation has (virtual time, network, faults),
and ``node.devnet`` uses them as they are. Nothing here imports either driver
(tests/test_layers.py holds that).

- ``declarations``: :class:`~sagachain.world.declarations.Declarations`, what a scenario declares;
- ``build``: :func:`~sagachain.world.build.build_world`, declarations to genesis, keys and stores;
- ``recipes``: stages many scenarios share (funded people, an enclave with vaults);
- ``workloads``: many transactions in a few calls, and ``traces``: from and to CSV files (docs/WORKLOADS.md).
"""
