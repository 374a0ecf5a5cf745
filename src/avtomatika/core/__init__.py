"""Pure domain code: records, transitions, effects, matching, the clock and the codec.

Nothing here does I/O or imports anything of the package outside ``core``.
"""
