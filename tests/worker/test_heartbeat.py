import asyncio
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

    async def __call__(self) -> HeartbeatResponse:
        self.times.append(time.monotonic())
        if self.fail:
            raise aiohttp.ClientConnectionError("down")
        return HeartbeatResponse(status="ok", next_heartbeat_jitter_ms=self.jitter_ms)


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
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(0.28)
    running.cancel()
    assert 3 <= len(beats.times) <= 7


async def test_a_nudge_beats_at_once() -> None:
    beats = Beats()
    loop = HeartbeatLoop(beats, interval=60.0)
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(0.01)
    assert beats.times == []
    loop.nudge()
    await asyncio.sleep(0.05)
    running.cancel()
    assert len(beats.times) == 1


async def test_a_failed_beat_is_survived_and_retried_on_schedule() -> None:
    beats = Beats(fail=True)
    loop = HeartbeatLoop(beats, interval=0.03)
    running = asyncio.create_task(loop.run())
    await asyncio.sleep(0.15)
    assert not running.done()
    running.cancel()
    assert len(beats.times) >= 2
