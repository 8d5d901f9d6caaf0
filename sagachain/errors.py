"""The project's one exception hierarchy.

Every error a user can see derives from :class:`SagaError`. Errors that come
from a rule of ``SPEC.md`` carry the rule id, so a message can always be traced
back to the sentence that it enforces. Messages say what was wrong, with the
offending value, and what to do about it.
"""

from __future__ import annotations


class SagaError(Exception):
    """Base of every error the project raises on purpose."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        self.rule = rule
        super().__init__(f"[{rule}] {message}" if rule else message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by state, not by constructor arguments: subclasses take different ones,
        and errors cross process boundaries (a sweep's Dask workers)."""
        return (_restore, (type(self), str(self), dict(self.__dict__)))


def _restore(cls: type[SagaError], text: str, state: dict[str, object]) -> SagaError:
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.__dict__.update(state)
    return error


class InputError(SagaError):
    """Raised when user input (a scenario, a CLI argument, a key file) is invalid."""


class ChainFormatError(SagaError):
    """Raised when bytes are not a readable chain file.

    ``offset`` is the byte offset where reading failed and ``expected`` says
    what the reader wanted to find there.
    """

    def __init__(self, message: str, *, offset: int, expected: str) -> None:
        self.offset = offset
        self.expected = expected
        super().__init__(f"at byte {offset}: {message} (expected {expected})")


class RuleViolation(SagaError):
    """Raised when an action would break a rule of SPEC.md; ``rule`` names it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message, rule=rule)


class ScriptError(RuleViolation):
    """Raised when SagaPython source uses a construct outside the subset (TX-1).

    ``line`` is the 1-based source line of the offending construct.
    """

    def __init__(self, message: str, *, line: int, construct: str) -> None:
        self.line = line
        self.construct = construct
        super().__init__("TX-1", f"line {line}: {construct}: {message}")


class ExecutionError(RuleViolation):
    """Raised inside a runtime when a transaction cannot go on.

    The transaction fails (its writes are discarded, its gas is still charged);
    ``rule`` names why: RT-4 for out of gas, CMI-1 for a refused dispatch, ...
    """


class ScriptFailure(SagaError):
    """Raised when a script fails on its own terms: ``require`` was false, a
    field is missing, a division by zero. No rule was broken; the transaction
    fails and still pays its gas."""


class StorageError(SagaError):
    """Raised when a node's database cannot be read or written (disk full, file locked);
    the message names the file and says that nothing of the failed write was kept."""
