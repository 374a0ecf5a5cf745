"""The one clock: wall-clock epoch seconds, comparable across hosts and restarts.

Deadlines are stored and sent to workers as epoch times (lifecycle.md W-13), never as a
per-host monotonic value.
"""

import time


def now() -> float:
    return time.time()
