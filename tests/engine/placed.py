"""Waiting for the executor to place a job's task, read from the job document."""

import asyncio

from tests.conftest import Orchestrator


async def placed_on(orch: Orchestrator, job_id: str, timeout: float = 10.0) -> str:
    """The worker the job's (first) task is placed on, once the executor has placed it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        tasks = (await orch.job(job_id))["tasks"]
        if tasks and tasks[0]["worker_id"] is not None:
            return str(tasks[0]["worker_id"])
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} was never placed")
        await asyncio.sleep(0.02)
