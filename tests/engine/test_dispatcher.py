"""Every dispatch strategy a handler may ask for has a rule that places the task."""

from typing import Any

import pytest

from avtomatika.core.records import DISPATCH_STRATEGIES
from tests.conftest import OrchestratorFactory
from tests.engine.placed import placed_on
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker


@pytest.mark.parametrize("strategy", sorted(DISPATCH_STRATEGIES))
async def test_each_strategy_places_the_task(orchestrator: OrchestratorFactory, strategy: str) -> None:
    async with orchestrator(echo_blueprint(dispatch_strategy=strategy)) as orch:
        workers = [WireWorker(orch.session, orch.url, f"w{i}") for i in range(2)]
        for worker in workers:
            await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo", {"strategy": strategy})
        for _ in range(50):
            for worker in workers:
                task = await worker.poll()
                if task is not None:
                    assert (await worker.result(task, data={"by": worker.worker_id}))[0] == 200
                    assert (await orch.wait_for(job_id))["status"] == "finished"
                    return
        raise AssertionError(f"no worker got the {strategy} task")


async def test_requirements_place_and_steal_only_where_the_worker_has_enough(
    orchestrator: OrchestratorFactory,
) -> None:
    def gpus(*memory_gb: int) -> list[dict[str, Any]]:
        return [{"type": "gpu", "model": "RTX", "properties": {"memory_gb": m}} for m in memory_gb]

    needs = {"resources": {"cpu_cores": 8, "ram_gb": 32, "devices": gpus(16, 16)}}
    async with orchestrator(
        echo_blueprint(resource_requirements=needs), WORKER_POLL_TIMEOUT_SECONDS=0.1
    ) as orch:
        laptop = WireWorker(orch.session, orch.url, "laptop")
        await laptop.register(
            "echo", resources={"max_concurrent_tasks": 4, "cpu_cores": 8, "ram_gb": 64, "devices": gpus(24)}
        )
        rig = WireWorker(orch.session, orch.url, "rig")
        await rig.register(
            "echo",
            resources={"max_concurrent_tasks": 1, "cpu_cores": 16, "ram_gb": 64, "devices": gpus(24, 16)},
        )
        job_ids = [await orch.create_job("/api/v1/jobs/echo", {"n": n}) for n in range(2)]
        placed = [await placed_on(orch, job_id) for job_id in job_ids]
        # The rig's backlog is over its capacity, but the laptop has one GPU for two wanted:
        # it may not steal either task.
        assert await laptop.poll() is None
        task = await rig.poll_until_task()
        assert (await rig.result(task, data={"by": "rig"}))[0] == 200
        assert (await orch.wait_for(task["job_id"]))["status"] == "finished"
    assert placed == ["rig", "rig"]
