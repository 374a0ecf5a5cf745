"""Every dispatch strategy a handler may ask for has a rule that places the task."""

import pytest

from avtomatika.core.records import DISPATCH_STRATEGIES
from tests.conftest import OrchestratorFactory
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
