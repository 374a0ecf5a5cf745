"""Every orchestrator instance down at once while published-SDK workers (avtomatika-worker
1.0b13) run tasks: frozen (``SIGSTOP``, as a paused VM or a partition: connections hang), or
killed (``kill -9``) and restarted on the same addresses.

Meanwhile the workers keep retrying their heartbeats, polls and results. Two guarantees meet here:

- a result the SDK signed before the outage and resends after it is applied, however old its
  timestamp (the 75 s variant outlasts the 60 s replay window; the SDK would drop a refused one);
- an instance that starts after nobody watched the fleet judges no worker dead and no task timed
  out for one worker TTL, so heartbeats and results that could not land have time to, and no
  task runs a second time because of the outage.

The skill logs each completed run, so a task run twice would show in the log. A killed
instance's outage is kept shorter than the SDK's own result retries (about 15 s against refused
connections, after which it drops the result and the task must run again after its timeout).
"""

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.fault.app import SINGLE_PATH
from tests.fault.harness import Cluster, assert_finished_once
from tests.integration.sdk import sdk_worker

WORKERS = 3
CONCURRENCY = 4
JOBS = 36
TASK_SECONDS = 3.0


async def _run_through_outage(tmp_path: Path, outage_seconds: float, *, kill: bool) -> None:
    run_log = tmp_path / "runs.log"
    run_log.touch()
    async with Cluster(tmp_path) as cluster, AsyncExitStack() as stack:
        await cluster.start_redis(fsync="always")
        orchs = await cluster.start_orchestrators(2)
        for i in range(WORKERS):
            url = orchs[i % len(orchs)].url
            await stack.enter_async_context(
                sdk_worker(url, f"sdk-{i}", concurrency=CONCURRENCY, RUN_LOG=str(run_log))
            )
        await cluster.workers_registered(f"sdk-{i}" for i in range(WORKERS))

        acknowledged = [
            (await cluster.jobs.create(SINGLE_PATH, {"seconds": TASK_SECONDS}, prefer=i))[0]
            for i in range(JOBS)
        ]
        # Down while the first wave of tasks runs: their results are posted into the outage.
        await asyncio.sleep(TASK_SECONDS / 2)
        if kill:
            await asyncio.gather(*(orch.kill() for orch in orchs))
        else:
            for orch in orchs:
                orch.send(signal.SIGSTOP)
        await asyncio.sleep(outage_seconds)
        for orch in orchs:
            if kill:
                await cluster.restart(orch)
            else:
                orch.send(signal.SIGCONT)

        await assert_finished_once(cluster.jobs, acknowledged, run_log, timeout=120)
        for orch in orchs:
            assert "Traceback" not in orch.log_text(), f"{orch.name} logged a traceback:\n{orch.log_tail()}"


async def test_sdk_workers_ride_out_every_instance_killed_and_restarted(tmp_path: Path) -> None:
    await _run_through_outage(tmp_path, outage_seconds=12, kill=True)


async def test_sdk_workers_ride_out_every_instance_frozen(tmp_path: Path) -> None:
    await _run_through_outage(tmp_path, outage_seconds=15, kill=False)


@pytest.mark.chaos
async def test_sdk_results_signed_before_a_75s_freeze_of_every_instance_are_applied_once(
    tmp_path: Path,
) -> None:
    await _run_through_outage(tmp_path, outage_seconds=75, kill=False)
