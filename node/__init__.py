"""The SagaChain node: the trio driver of the shard machines over real sockets.

It shares every line of protocol logic with the simulator (``shards``,
``runtimes``, ``sagachain.core``); only transport, storage, clocks, the
client API, metrics and logs live here (``sagachain node``, docs/NODE.md).
"""
