"""Exponential backoff shared by every retry loop of the worker (poll, register, results, socket)."""

import random


class Backoff:
    """Delays ``initial``, ``2 * initial``, … capped at ``maximum``, with ±10 % jitter.

    The jitter keeps a fleet of workers that lost the orchestrator at the same instant from
    reconnecting in lock-step.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        return delay * random.uniform(0.9, 1.1)

    def reset(self) -> None:
        self._next = self._initial
