"""Our worker client with the fault tests' skills: ``avtomatika worker tests.fault.worker_app:worker``.

Configured by ``AVTOMATIKA_URL``, ``AVTOMATIKA_WORKER_TOKEN``, ``AVTOMATIKA_WORKER_ID`` and
``AVTOMATIKA_MAX_CONCURRENT_TASKS``, plus:

- ``FAULT_HEARTBEAT_INTERVAL`` (seconds, default 0.3) and ``FAULT_POLL_TIMEOUT`` (default 2);
- ``FAULT_SLOW_SECONDS``: how long the ``slow`` skill runs on this worker (default 0.1);
- ``FAULT_MARKER_DIR``: where ``slow`` leaves ``<task_id>.<worker_id>.started`` as it starts, so a
  test knows which worker runs the task, and since when, before it kills or stops that worker.
"""

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

from avtomatika.worker import Worker

worker = Worker.from_env(
    heartbeat_interval=float(os.environ.get("FAULT_HEARTBEAT_INTERVAL", "0.3")),
    poll_timeout=float(os.environ.get("FAULT_POLL_TIMEOUT", "2")),
    shutdown_timeout=2.0,
)
SLOW_SECONDS = float(os.environ.get("FAULT_SLOW_SECONDS", "0.1"))
MARKER_DIR = os.environ.get("FAULT_MARKER_DIR")


async def _jitter() -> None:
    """A few milliseconds of work, so results of one fan-out arrive spread out and interleaved."""
    await asyncio.sleep(random.uniform(0, 0.02))


@worker.skill("prepare")
async def prepare(params: dict[str, Any]) -> dict[str, Any]:
    await _jitter()
    return {"prepared": params.get("n")}


@worker.skill("part")
async def part(params: dict[str, Any]) -> dict[str, Any]:
    await _jitter()
    return {"part": params["part"], "value": params["n"] * 10 + params["part"]}


@worker.skill("finish_child")
async def finish_child(params: dict[str, Any]) -> dict[str, Any]:
    await _jitter()
    return {"child_of": params.get("n")}


@worker.skill("slow")
async def slow(task_id: str) -> dict[str, Any]:
    if MARKER_DIR:
        marker = Path(MARKER_DIR, f"{task_id}.{worker.worker_id}.started")
        await asyncio.to_thread(marker.write_text, repr(time.time()))
    await asyncio.sleep(SLOW_SECONDS)
    return {"ran_on": worker.worker_id}
