import asyncio
import itertools
import time

import aiohttp
import pytest

from avtomatika.protocol.models import HeartbeatResponse
from avtomatika.worker.heartbeat import HeartbeatLoop


class Beats:
    def __init__(self, jitter_ms: int = 0, fail: bool = False) -> None:
        self.times: list[float] = []
        self.jitter_ms = jitter_ms
        self.fail = fail
        self._beaten = asyncio.Event()

    async def __call__(self) -> HeartbeatResponse:
        self.times.append(time.monotonic())
        self._beaten.set()
        if self.fail:
            raise aiohttp.ClientConnectionError("down")
        return HeartbeatResponse(status="ok", next_heartbeat_jitter_ms=self.jitter_ms)

    async def until(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` beats were made (a busy machine may make each one late)."""
        async with asyncio.timeout(timeout):
            while len(self.times) < count:
                self._beaten.clear()
                await self._beaten.wait()


@pytest.mark.parametrize(
    ("jitter_ms", "expected"), [(0, 1.0), (200, 1.2), (-300, 0.7), (5000, 1.5), (-5000, 0.5)]
)
async def test_next_delay_is_interval_plus_jitter_clamped_to_half_the_interval(
    jitter_ms: int, expected: float
) -> None:
    loop = HeartbeatLoop(Beats(jitter_ms), interval=1.0)
    await loop.beat_now()
    assert loop._delay == pytest.approx(expected)


async def test_beats_repeat_every_interval() -> None:
    beats = Beats()
    loop = HeartbeatLoop(beats, interval=0.05)
    started = time.monotonic()
    running = asyncio.create_task(loop.run())
    await beats.until(5)
    running.cancel()
    gaps = [b - a for a, b in itertools.pairwise([started, *beats.times])]
    # Never sooner than the interval (the loop does not spin); a loaded machine may make it later.
    assert min(gaps) >= 0.045, gaps


async def test_a_nudge_beats_at_once() -> None:
    beats = Beats()
    loop = HeartbeatLoop(beats, interval=60.0)
    running = asyncio.create_task(loop.run())
    for _ in range(3):
        await asyncio.sleep(0)  # the loop starts waiting out its 60 s
    assert beats.times == []
    loop.nudge()
    await beats.until(1, timeout=10)  # far sooner than the interval
    running.cancel()
    assert len(beats.times) == 1


async def test_a_failed_beat_is_survived_and_retried_on_schedule() -> None:
    beats = Beats(fail=True)
    loop = HeartbeatLoop(beats, interval=0.03)
    running = asyncio.create_task(loop.run())
    await beats.until(3)
    assert not running.done()
    running.cancel()
    assert min(b - a for a, b in itertools.pairwise(beats.times)) >= 0.025
