import pytest

from avtomatika.worker.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset() -> None:
    backoff = Backoff(1.0, 5.0)
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, expected in zip(delays, [1, 2, 4, 5, 5], strict=True):
        assert delay == pytest.approx(expected, rel=0.1)
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(1.0, rel=0.1)
