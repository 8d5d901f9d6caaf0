"""The discrete-event queue: virtual time, deterministic order.

Events are kept in a heap of (time, priority, sequence, action). The sequence
number breaks ties in insertion order, so two runs with the same seed process
the same events in the same order and write the same bytes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class EventQueue:
    now: int = 0
    _heap: list[tuple[int, int, int, Callable[[], None]]] = field(default_factory=list)
    _seq: int = 0

    def at(self, time: int, action: Callable[[], None], priority: int = 0) -> None:
        """Schedule ``action`` at virtual ``time`` (milliseconds); never in the past."""
        heapq.heappush(self._heap, (max(time, self.now), priority, self._seq, action))
        self._seq += 1

    def after(self, delay: int, action: Callable[[], None], priority: int = 0) -> None:
        self.at(self.now + delay, action, priority)

    def run(self, until: int, on_step: Callable[[int], None] | None = None) -> None:
        """Process events in order until the queue is empty or time passes ``until``."""
        while self._heap and self._heap[0][0] <= until:
            time, _, _, action = heapq.heappop(self._heap)
            self.now = time
            action()
            if on_step is not None:
                on_step(time)
        self.now = max(self.now, until) if not self._heap else self.now

    def __len__(self) -> int:
        return len(self._heap)
