"""Redis frozen (SIGSTOP) and killed (``kill -9``, AOF ``always``) under load, with published-SDK
workers (avtomatika-worker 1.0b13) on two orchestrator instances.

Nothing is restarted but Redis. Requests meet 503s (the SDK retries its polls and heartbeats),
results posted meanwhile are held until Redis answers (the SDK would drop a refused one), the
watcher judges no worker or task by deadlines that passed while heartbeats and results could not
land. So every acknowledged job finishes, each task ran exactly once (the skill logs its runs), and
each instance logs each outage in a few lines, with no traceback.
"""

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path

from tests.fault.app import SINGLE_PATH
from tests.fault.harness import Cluster, assert_finished_once
from tests.integration.sdk import sdk_worker

JOBS = 240
WORKERS = 3


async def test_sdk_workers_ride_out_a_frozen_and_a_killed_redis(tmp_path: Path) -> None:
    run_log = tmp_path / "runs.log"
    async with Cluster(tmp_path) as cluster, AsyncExitStack() as stack:
        redis = await cluster.start_redis(fsync="always")
        orchs = await cluster.start_orchestrators(2, STORAGE_RETRY_SECONDS="1")
        for i in range(WORKERS):
            url = orchs[i % len(orchs)].url
            await stack.enter_async_context(sdk_worker(url, f"sdk-{i}", concurrency=4, RUN_LOG=str(run_log)))
        await cluster.workers_registered(f"sdk-{i}" for i in range(WORKERS))

        async def submit() -> list[str]:
            acknowledged = []
            for i in range(JOBS):
                job_id, _ = await cluster.jobs.create(SINGLE_PATH, {"seconds": 0.2}, prefer=i)
                acknowledged.append(job_id)
                await asyncio.sleep(0.04)
            return acknowledged

        async def outages() -> None:
            await asyncio.sleep(2)
            redis.send(signal.SIGSTOP)
            await asyncio.sleep(6)
            redis.send(signal.SIGCONT)
            await asyncio.sleep(3)
            await redis.kill()
            await asyncio.sleep(2)
            redis.start()
            await redis.ready()

        acknowledged, _ = await asyncio.gather(submit(), outages())
        everything = [doc["id"] for doc in await cluster.jobs.all_jobs()]
        assert set(acknowledged) <= set(everything), "an acknowledged job was lost"
        await assert_finished_once(cluster.jobs, everything, run_log, timeout=90)
        for orch in orchs:
            log = orch.log_text()
            assert "Traceback" not in log, f"{orch.name} logged a traceback:\n{orch.log_tail()}"
            outage_lines = [line for line in log.splitlines() if "Redis is unreachable" in line]
            assert 1 <= len(outage_lines) <= 4, outage_lines
