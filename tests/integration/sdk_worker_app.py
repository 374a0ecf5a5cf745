"""A worker built with the published SDK (avtomatika-worker 1.0b13), run unmodified as a subprocess.

Configured entirely through the SDK's own environment variables (ORCHESTRATOR_URL,
WORKER_ID, WORKER_TOKEN, MAX_CONCURRENT_TASKS, HEARTBEAT_INTERVAL, ...).
"""

import asyncio
import os
from pathlib import Path
from typing import Any

from avtomatika_worker import Worker

worker = Worker(worker_type="sdk-test-worker")
_failed_once: set[str] = set()


@worker.skill("echo")
async def echo(params: dict[str, Any], **_: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"echo": params}}


@worker.skill("square")
async def square(params: dict[str, Any], **_: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"value": params["n"] * params["n"]}}


@worker.skill("flaky")
async def flaky(params: dict[str, Any], job_id: str, **_: Any) -> dict[str, Any]:
    if job_id not in _failed_once:
        _failed_once.add(job_id)
        raise RuntimeError("transient failure, try again")
    return {"status": "success", "data": {"recovered": True}}


@worker.skill("sleep")
async def sleep(params: dict[str, Any], task_id: str, **_: Any) -> dict[str, Any]:
    """Sleeps ``seconds``; with ``CANCEL_MARKER_DIR`` set, leaves ``<task_id>.started`` there as it
    starts and ``<task_id>`` when it is cancelled."""
    marker_dir = os.environ.get("CANCEL_MARKER_DIR")
    if marker_dir:
        await asyncio.to_thread(Path(marker_dir, f"{task_id}.started").touch)
    try:
        await asyncio.sleep(float(params.get("seconds", 30)))
    except asyncio.CancelledError:
        # Proof for the tests that the cancellation reached this handler.
        if marker_dir:
            Path(marker_dir, task_id).touch()  # noqa: ASYNC240 - a test marker, the loop is ending the task
        raise
    return {"status": "success", "data": {"slept": True}}


@worker.skill("slow")
async def slow(params: dict[str, Any], job_id: str, **_: Any) -> dict[str, Any]:
    """Runs ``seconds``; with ``RUN_LOG`` set, appends the job id to that file once per run (one
    short O_APPEND write, so several worker processes may share the file)."""
    await asyncio.sleep(float(params.get("seconds", 0.05)))
    run_log = os.environ.get("RUN_LOG")
    if run_log:
        descriptor = os.open(run_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(descriptor, f"{job_id}\n".encode())
        finally:
            os.close(descriptor)
    return {"status": "success", "data": {"slept": True}}


if __name__ == "__main__":
    worker.run()
