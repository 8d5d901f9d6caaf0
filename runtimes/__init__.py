"""Language runtimes: the SagaPython subset, its interpreter, gas, and the CMI dispatcher.

``runtimes`` sits between the core (records, encoding) and the shards: a
shard machine hands a transaction, an :class:`ExecutionContext` and a view of
objects to :func:`execute_transaction` and gets back writes, logs and gas.
"""

from runtimes.classes import builtin_account_class, compile_class, enclave_account_class, private_runtime, public_runtime
from runtimes.context import ExecutionContext, ExecutionResult, ObjectView
from runtimes.gas import GasMeter, GasSchedule
from runtimes.interpreter import execute_transaction
from runtimes.subset import check_class_source, check_script

__all__ = [
    "ExecutionContext",
    "ExecutionResult",
    "GasMeter",
    "GasSchedule",
    "ObjectView",
    "builtin_account_class",
    "check_class_source",
    "check_script",
    "compile_class",
    "enclave_account_class",
    "execute_transaction",
    "private_runtime",
    "public_runtime",
]
