"""The SagaChain node: the trio driver of the shard machines over real sockets.

It shares every line of protocol logic with the simulator (``shards``,
``runtimes``, ``sagachain.core``); only transport, storage and clocks live
here. Its commands arrive with the node issue; until then the simulator is
the only driver.
"""
